"""Synthetic example data that is not one task's `example_data` (biosig/cli/examples.py writes
both): `subjects`, windows of 8 subjects with a pattern of their own beside the class's shared
one (cross-validation by subject), and `recordings`, continuous EDF recordings with annotated
events (for biosig.windows; needs mne and edfio).
"""
import os

import numpy as np

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
