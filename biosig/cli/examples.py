"""Example data for every task, to try a task before exporting your own windows:

    python -m biosig.examples regression ex/reg        # -> ex/reg/X_train.npy, y_train.npy, X_test.npy, y_test.npy
    python -m biosig.examples subjects ex/subj         # -> ex/subj/X.npy, y.npy, groups.npy (8 subjects)

Synthetic windows with real signal (each task's `example_data`, the data the tests train on):
regression targets are a linear map of per-channel levels under noise; segmentation windows
carry one burst event each, labelled frame by frame; pretrain writes 2,000 unlabelled noisy
windows (X_unlabelled.npy), 12 labelled ones (X_few.npy, y_few.npy) and 500 test windows of
the classification example, for pretraining then fine-tuning (docs/tasks.md). `subjects` is
a classification set of 8 subjects whose windows carry a pattern of their own subject's beside
the class's shared one, for cross-validation by subject (docs/sweep.md). `recordings` writes
continuous EDF recordings with annotated events (needs mne and edfio), for biosig.windows
(docs/recordings.md).
"""
import argparse
import os
import sys

import numpy as np

from ..atomic import atomic_path
from ..data.examples import SHAPE, recordings, subjects
from ..errors import ArgumentParser, prog, run_cli
from ..tasks import TASKS


def arrays(task, seed=0):
    """{file name: array} for `task` (or "subjects")."""
    if task == "subjects":
        return subjects(seed=seed)
    c, f, t = SHAPE
    if task == "pretrain":
        X, y = TASKS["classification"].example_data(2512, c, f, t, seed=seed, noise=2.0)
        return {"X_unlabelled": X[:2000], "X_few": X[2000:2012], "y_few": y[2000:2012],
                "X_test": X[2012:], "y_test": y[2012:]}
    X, y = TASKS[task].example_data(800, c, f, t, seed=seed)
    return {"X_train": X[:600], "y_train": y[:600], "X_test": X[600:], "y_test": y[600:]}


def main(argv=None):
    p = ArgumentParser(prog=prog("biosig.examples"), description=__doc__.splitlines()[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=sorted(TASKS) + ["subjects", "recordings"])
    p.add_argument("out", help="directory to write the .npy files to (created)")
    from ..threads import add_threads_flag, apply as apply_threads
    add_threads_flag(p)
    args = p.parse_args(argv)
    threads = apply_threads(args.threads, import_torch=False)
    # on stderr: stdout lists the files written, one a line, for a script to read
    print(f"biosig.examples {args.task}: {threads}", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    if args.task == "recordings":
        for path in recordings(args.out):
            print(path)
        return
    for name, array in arrays(args.task).items():
        path = os.path.join(args.out, f"{name}.npy")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        print(f"{path} {array.shape} {array.dtype}")


if __name__ == "__main__":
    run_cli(main)
