"""Synthetic example data that is not one task's `example_data` (biosig/cli/examples.py writes
both): `subjects`, windows of 8 subjects with a pattern of their own beside the class's shared
one (cross-validation by subject), `wearable`, wrist PPG at 64 Hz beside a 3-axis accelerometer
at 32 Hz with heart rate and activity (the modalities of issue 30's fusion), and `recordings`,
continuous EDF recordings with annotated events (for biosig.windows; needs mne and edfio).
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


# The wearable set: its modalities' signal contracts (X.signal.json) and its activities
WEARABLE_SIGNALS = {"ppg": {"fs": 64, "channels": ["ppg"], "units": "a.u."},
                    "acc": {"fs": 32, "channels": ["acc_x", "acc_y", "acc_z"], "units": "g"}}
ACTIVITIES = ["rest", "walk", "run"]
# per activity: heart rate mean and std (bpm), step rate range (Hz), vertical and arm-swing amplitude (g)
_MOTION = {"rest": (70, 10, (0.2, 0.5), 0.02, 0.02),
           "walk": (100, 12, (1.6, 2.2), 0.35, 0.2),
           "run": (145, 15, (2.3, 3.0), 1.1, 0.45)}


def wearable(n=600, n_test=200, seed=0, seconds=8):
    """{ppg, acc, hr, act} and their *_test: windows of `seconds` s from a wrist, PPG (N, 1, 1, 64 s)
    float32 and acceleration (N, 3, 1, 32 s) float32 in g, heart rate hr (N,) float32 in bpm and
    activity act (N,) int64 (ACTIVITIES). The activity sets the motion (rest: still, gravity only;
    walk: ~2 Hz steps; run: ~3 Hz and stronger, in a random wrist orientation) and shifts the heart
    rate; the PPG is a pulse wave at the heart rate under noise and baseline wander, plus a motion
    artifact: the acceleration's magnitude less gravity, scaled by a coupling drawn per window (a
    loose or tight strap). Running's step rate lies near its heart rate, so HR from PPG alone is
    hardest there and the accelerometer says where the artifact is."""
    rng = np.random.default_rng(seed)
    total = n + n_test
    act = np.arange(total) % len(ACTIVITIES)
    rng.shuffle(act)
    fs = WEARABLE_SIGNALS["ppg"]["fs"]
    t = np.arange(int(seconds * fs)) / fs                    # the PPG's clock; acc is every 2nd sample
    hr = np.empty(total)
    motion = np.empty((total, 3, len(t)))
    for k, name in enumerate(ACTIVITIES):
        at = act == k
        mean, std, steps, vertical, swing = _MOTION[name]
        hr[at] = np.clip(rng.normal(mean, std, at.sum()), 45, 190)
        motion[at] = _wrist_motion(rng, t, at.sum(), steps, vertical, swing)
    acc = motion[:, :, ::fs // WEARABLE_SIGNALS["acc"]["fs"]]
    acc = acc + rng.normal(0, 0.02, acc.shape)
    dynamic = np.linalg.norm(motion, axis=1) - 1.0           # |a| less gravity (1 g)
    coupling = rng.uniform(1.0, 4.0, (total, 1))
    ppg = _pulse(rng, t, hr) + coupling * dynamic + rng.normal(0, 0.6, (total, len(t)))
    arrays = {"ppg": ppg[:, None, None, :], "acc": acc[:, :, None, :], "hr": hr, "act": act.astype(np.int64)}
    arrays = {k: v.astype(np.int64 if k == "act" else np.float32) for k, v in arrays.items()}
    return {**{k: v[:n] for k, v in arrays.items()}, **{f"{k}_test": v[n:] for k, v in arrays.items()}}


def _wrist_motion(rng, t, m, steps, vertical, swing):
    """(m, 3, T) acceleration in g on the sensor's axes: gravity plus a step oscillation (vertical,
    with its harmonic) and an arm swing at half the step rate, turned by a random wrist orientation."""
    f = rng.uniform(*steps, (m, 1))
    a = vertical * rng.uniform(0.7, 1.3, (m, 1))
    b = swing * rng.uniform(0.7, 1.3, (m, 1))
    phase = rng.uniform(0, 2 * np.pi, (m, 3, 1))
    body = np.stack([b * np.sin(np.pi * f * t + phase[:, 0]),
                     0.5 * b * np.sin(2 * np.pi * f * t + phase[:, 1]),
                     1.0 + a * (np.sin(2 * np.pi * f * t + phase[:, 2]) + 0.3 * np.sin(4 * np.pi * f * t))], 1)
    q, r = np.linalg.qr(rng.normal(size=(m, 3, 3)))          # a random rotation per window
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return np.einsum("mij,mjt->mit", q, body)


def _pulse(rng, t, hr):
    """(N, T) pulse waves at hr bpm (a beat-to-beat wobble of 3 %): a systolic peak and a smaller
    dicrotic wave, random amplitude and phase, over breathing's baseline wander."""
    m = len(hr)
    wobble = 1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3, (m, 1)) * t + rng.uniform(0, 2 * np.pi, (m, 1)))
    dt = t[1] - t[0]
    theta = 2 * np.pi * np.cumsum(hr[:, None] / 60 * wobble, axis=1) * dt + rng.uniform(0, 2 * np.pi, (m, 1))
    wave = np.sin(theta) + 0.4 * np.sin(2 * theta - 0.8)
    breath = 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 0.33, (m, 1)) * t + rng.uniform(0, 2 * np.pi, (m, 1)))
    return rng.uniform(0.7, 1.3, (m, 1)) * wave + breath


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
