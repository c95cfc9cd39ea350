"""Example data for every task, to try a task before exporting your own windows:

    python -m biosig.examples regression ex/reg        # -> ex/reg/X_train.npy, y_train.npy, X_test.npy, y_test.npy
    python -m biosig.examples subjects ex/subj         # -> ex/subj/X.npy, y.npy, groups.npy (8 subjects)

Synthetic windows with real signal (each task's `example_data`, the data the tests train on):
regression targets are a linear map of per-channel levels under noise; segmentation windows
carry one burst event each, labelled frame by frame; pretrain writes 2,000 unlabelled noisy
windows (X_unlabelled.npy), 12 labelled ones (X_few.npy, y_few.npy) and 500 test windows of
the classification example, for pretraining then fine-tuning (README, "Tasks"). `subjects` is
a classification set of 8 subjects whose windows carry a pattern of their own subject's beside
the class's shared one, for cross-validation by subject (docs/sweep.md). `recordings` writes
continuous EDF recordings with annotated events (needs mne and edfio), for biosig.windows
(README, "From recordings to windows").
"""
import argparse
import os
import sys

import numpy as np

from ..atomic import atomic_path
from ..errors import ArgumentParser, prog, run_cli
from ..tasks import TASKS

SHAPE = (3, 1, 64)          # C, F, T


def subjects(n_subjects=8, per_subject=60, seed=0, k=3, shared=0.4, own=1.2, noise=0.8):
    """{X (N, C, F, T), y (N,), groups (N,)}: N = n_subjects x per_subject windows, class j a weak
    sinusoid of frequency j + 1 on channel j % C shared by every subject, plus a stronger
    sinusoid of the subject's own (channel, frequency, phase drawn per subject and class). A
    split with a subject on both sides can score by the subject's own patterns; a new subject
    (leave-one-subject-out) has only the shared one: honest scores are lower."""
    c, f, t = SHAPE
    rng = np.random.default_rng(seed)
    frames = np.arange(t)
    Xs, ys = [], []
    for _ in range(n_subjects):
        y = np.arange(per_subject) % k
        rng.shuffle(y)
        X = rng.normal(0, noise, size=(per_subject, c, f, t)).astype(np.float32)
        for cls in range(k):
            X[y == cls, cls % c] += shared * np.sin(2 * np.pi * (cls + 1) * frames / t * 2).astype(np.float32)
            chan, freq, phase = rng.integers(c), rng.uniform(3, 8), rng.uniform(0, 2 * np.pi)
            X[y == cls, chan] += own * np.sin(2 * np.pi * freq * frames / t + phase).astype(np.float32)
        Xs.append(X)
        ys.append(y)
    groups = np.repeat(np.arange(n_subjects), per_subject)
    return {"X": np.concatenate(Xs), "y": np.concatenate(ys).astype(np.int64), "groups": groups}


def recordings(out, minutes=2, fs=128):
    """EDF files in `out`: s01-s03.edf (Fz, Cz, Pz) and new.edf (a fourth session, its channels in
    the order Pz, Fz, Cz), each `minutes` long at `fs` Hz with an event every 5 s annotated "left"
    (4 s of 10 Hz on Fz) or "right" (4 s of 20 Hz on Pz) over noise. Returns the paths."""
    from ..errors import needs
    import importlib.util
    try:
        import mne
        if importlib.util.find_spec("edfio") is None:          # MNE's EDF writer
            raise ImportError("edfio")
    except ImportError:
        raise needs("python -m biosig.examples recordings (EDF files through MNE)", "mne", "edfio") from None
    mne.set_log_level("ERROR")
    paths = []
    for k, (name, order) in enumerate([("s01", "FCP"), ("s02", "FCP"), ("s03", "FCP"), ("new", "PFC")]):
        rng = np.random.default_rng(k + 1)
        n = int(minutes * 60 * fs)
        t = np.arange(n) / fs
        data = {c: rng.normal(0, 1, n) for c in "FCP"}
        onsets = np.arange(2, minutes * 60 - 6, 5.0)
        labels = rng.choice(["left", "right"], len(onsets))
        for start, label in zip(onsets, labels):
            at = slice(int(start * fs), int((start + 4) * fs))
            chan, freq = ("F", 10) if label == "left" else ("P", 20)
            data[chan][at] += 2 * np.sin(2 * np.pi * freq * t[at])
        names = {"F": "Fz", "C": "Cz", "P": "Pz"}
        raw = mne.io.RawArray(np.stack([data[c] for c in order]) * 1e-5,
                              mne.create_info([names[c] for c in order], fs, "eeg"))
        raw.set_annotations(mne.Annotations(onsets, 4.0, labels))
        path = os.path.join(out, f"{name}.edf")
        mne.export.export_raw(path, raw, overwrite=True)
        paths.append(path)
    return paths


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
