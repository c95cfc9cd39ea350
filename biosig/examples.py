"""Example data for every task, to try a task before exporting your own windows:

    python -m biosig.examples regression ex/reg        # -> ex/reg/X_train.npy, y_train.npy, X_test.npy, y_test.npy

Synthetic windows with real signal (each task's `example_data`, the data the tests train on):
regression targets are a linear map of per-channel levels under noise; segmentation windows
carry one burst event each, labelled frame by frame; pretrain writes 2,000 unlabelled noisy
windows (X_unlabelled.npy), 12 labelled ones (X_few.npy, y_few.npy) and 500 test windows of
the classification example, for pretraining then fine-tuning (README, "Tasks").
"""
import argparse
import os

import numpy as np

from .atomic import atomic_path
from .errors import ArgumentParser, run_cli
from .tasks import TASKS

SHAPE = (3, 1, 64)          # C, F, T


def arrays(task, seed=0):
    """{file name: array} for `task`."""
    c, f, t = SHAPE
    if task == "pretrain":
        X, y = TASKS["classification"].example_data(2512, c, f, t, seed=seed, noise=2.0)
        return {"X_unlabelled": X[:2000], "X_few": X[2000:2012], "y_few": y[2000:2012],
                "X_test": X[2012:], "y_test": y[2012:]}
    X, y = TASKS[task].example_data(800, c, f, t, seed=seed)
    return {"X_train": X[:600], "y_train": y[:600], "X_test": X[600:], "y_test": y[600:]}


def main(argv=None):
    p = ArgumentParser(prog="python -m biosig.examples", description=__doc__.splitlines()[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("out", help="directory to write the .npy files to (created)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name, array in arrays(args.task).items():
        path = os.path.join(args.out, f"{name}.npy")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        print(f"{path} {array.shape} {array.dtype}")


if __name__ == "__main__":
    run_cli(main)
