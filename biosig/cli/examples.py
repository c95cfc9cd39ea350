"""Example data for every task, to try a task before exporting your own windows:

    python -m biosig.examples regression ex/reg        # -> ex/reg/X_train.npy, y_train.npy, X_test.npy, y_test.npy
    python -m biosig.examples subjects ex/subj         # -> ex/subj/X.npy, y.npy, groups.npy (8 subjects)
    python -m biosig.examples wearable ex/wrist        # -> ex/wrist/ppg.npy, acc.npy, hr.npy, act.npy, *_test.npy

Synthetic windows with real signal (each task's `example_data`, the data the tests train on):
regression targets are a linear map of per-channel levels under noise; segmentation windows
carry one burst event each, labelled frame by frame; pretrain writes 2,000 unlabelled noisy
windows (X_unlabelled.npy), 12 labelled ones (X_few.npy, y_few.npy) and 500 test windows of
the classification example, for pretraining then fine-tuning (docs/tasks.md). `subjects` is
a classification set of 8 subjects whose windows carry a pattern of their own subject's beside
the class's shared one, for cross-validation by subject (docs/sweep.md). `wearable` writes 8 s
windows from a wrist, PPG at 64 Hz (ppg.npy) and a 3-axis accelerometer at 32 Hz (acc.npy), each
with its signal contract (ppg.signal.json, acc.signal.json), heart rate in bpm (hr.npy) and the
activity (act.npy, named in act_classes.json), the PPG carrying motion artifacts driven by the
acceleration (docs/tasks.md), and the same windows once more as two continuous sessions (s1: the
training windows, s2: the held-out ones; s1_ppg.npy (1, T), s1_acc.npy (3, T/2), s1_events.csv, ...)
for biosig.windows and streaming (docs/fusion.md). `recordings` writes
continuous EDF recordings with annotated events (needs mne and edfio), for biosig.windows
(docs/recordings.md).
"""
import argparse
import os
import sys

import numpy as np

from ..atomic import atomic_path
from ..data.examples import ACTIVITIES, SHAPE, WEARABLE_SIGNALS, recordings, subjects, wearable, wearable_recording
from ..errors import ArgumentParser, prog
from ..tasks import TASKS


def arrays(task, seed=0):
    """{file name: array} for `task` (or "subjects", "wearable")."""
    if task == "subjects":
        return subjects(seed=seed)
    if task == "wearable":
        return wearable(seed=seed)
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
    p.add_argument("task", choices=sorted(TASKS) + ["subjects", "wearable", "recordings"])
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
    made = arrays(args.task)
    if args.task == "wearable":                  # the windows also as two continuous sessions
        session, events = wearable_recording(made)
        made.update(session)
    for name, array in made.items():
        path = os.path.join(args.out, f"{name}.npy")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        print(f"{path} {array.shape} {array.dtype}")
    if args.task == "wearable":
        for path in described(args.out, events):
            print(path)


def described(out, events):
    """The wearable set's descriptions beside its arrays: each modality's signal contract
    (ppg.signal.json, acc_test.signal.json, s1_ppg.signal.json, ...), act_classes.json, and each
    continuous session's events (s1_events.csv, s2_events.csv: onset,duration,label). Returns the paths."""
    from ..atomic import write_json
    from ..signals import contract
    paths = []
    for name, spec in WEARABLE_SIGNALS.items():
        for stem in (name, f"{name}_test", f"s1_{name}", f"s2_{name}"):
            path = os.path.join(out, f"{stem}.npy")
            contract.write(path, spec)
            paths.append(contract.sidecar(path))
    paths.append(os.path.join(out, "act_classes.json"))
    write_json(paths[-1], ACTIVITIES)
    for session, rows in events.items():
        paths.append(os.path.join(out, f"{session}_events.csv"))
        with atomic_path(paths[-1]) as tmp:
            with open(tmp, "w") as fh:
                fh.write("onset,duration,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return paths
