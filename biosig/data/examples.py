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
# per activity: heart rate mean and std (bpm), step rate mean and std (Hz), vertical and arm-swing
# amplitude (g), and the range of the artifact's coupling (PPG units per g, log-uniform: while
# moving the artifact is from about the pulse's size to seven times it). Walking's and running's
# step rates are drawn like their heart rates, so the two overlap as on a real wrist (IEEE SPC
# 2015); harder steps (the effort) raise the heart rate.
_MOTION = {"rest": (70, 10, (0.35, 0.08), 0.02, 0.02, (2.0, 6.0)),
           "walk": (110, 15, (110 / 60, 15 / 60), 0.35, 0.2, (2.0, 20.0)),
           "run": (155, 15, (155 / 60, 15 / 60), 1.1, 0.45, (0.7, 7.0))}
_AXES = np.array([0.1, 0.4, 1.0])    # the artifact's gain per axis, before each window's own draw


def wearable(n=600, n_test=200, seed=0, seconds=8):
    """{ppg, acc, hr, act} and their *_test: windows of `seconds` s from a wrist, PPG (N, 1, 1, 64 s)
    float32 and acceleration (N, 3, 1, 32 s) float32 in g, heart rate hr (N,) float32 in bpm and
    activity act (N,) int64 (ACTIVITIES). The activity sets the motion (rest: still, gravity only;
    walk: ~1.8 Hz steps; run: ~2.6 Hz and stronger) and the heart rate, which also rises with the
    steps' effort; the PPG is a pulse wave at the heart rate under noise and baseline wander, plus a
    motion artifact at the step rate and its harmonics (_artifact), while moving often stronger than
    the pulse. Walking's and running's step rates overlap their heart rates, so from the PPG alone
    the pulse's spectral peak and the steps' look alike; the accelerometer says which is the steps."""
    rng = np.random.default_rng(seed)
    total = n + n_test
    act = np.arange(total) % len(ACTIVITIES)
    rng.shuffle(act)
    fs = WEARABLE_SIGNALS["ppg"]["fs"]
    lead = fs // 4                                           # motion from 0.25 s early, for the lags
    t = np.arange(-lead, int(seconds * fs)) / fs             # the PPG's clock
    hr, coupling = np.empty(total), np.empty((total, 1))
    motion = np.empty((total, 3, len(t)))
    for k, name in enumerate(ACTIVITIES):
        at = act == k
        mean, std, steps, vertical, swing, strap = _MOTION[name]
        effort = rng.uniform(-1, 1, (at.sum(), 1))
        hr[at] = np.clip(mean + std * effort[:, 0] + rng.normal(0, 0.4 * std, at.sum()), 45, 190)
        motion[at] = _wrist_motion(rng, t, effort, steps, vertical, swing)
        coupling[at] = np.exp(rng.uniform(*np.log(strap), (at.sum(), 1)))
    acc = motion[:, :, lead::fs // WEARABLE_SIGNALS["acc"]["fs"]]   # acc is every 2nd sample
    acc = acc + rng.normal(0, 0.02, acc.shape)
    ppg = _pulse(rng, t[lead:], hr) + coupling * _artifact(rng, motion, lead)
    ppg += rng.normal(0, 0.3, ppg.shape)
    arrays = {"ppg": ppg[:, None, None, :], "acc": acc[:, :, None, :], "hr": hr, "act": act.astype(np.int64)}
    arrays = {k: v.astype(np.int64 if k == "act" else np.float32) for k, v in arrays.items()}
    return {**{k: v[:n] for k, v in arrays.items()}, **{f"{k}_test": v[n:] for k, v in arrays.items()}}


def wearable_recording(arrays, seconds=8):
    """wearable()'s windows played back to back as two continuous sessions, for biosig.windows and
    streaming: s1 the training windows, s2 the held-out ones -> ({"s1_ppg": (1, T) float32 at 64 Hz,
    "s1_acc": (3, T / 2) at 32 Hz, "s2_ppg", "s2_acc"}, {"s1": events, "s2": events}), the events
    [(onset s, duration s, activity name)] one per window."""
    rec, events = {}, {}
    for session, suffix in (("s1", ""), ("s2", "_test")):
        for name in WEARABLE_SIGNALS:
            rec[f"{session}_{name}"] = np.concatenate(list(arrays[f"{name}{suffix}"][:, :, 0]), axis=-1)
        events[session] = [(i * seconds, seconds, ACTIVITIES[a]) for i, a in enumerate(arrays[f"act{suffix}"])]
    return rec, events


def _artifact(rng, motion, lead):
    """(m, T) motion artifact in the PPG per unit coupling, from motion (m, 3, lead + T) in g: each
    axis's acceleration less gravity, with a gain (around _AXES) and a delay (up to `lead` samples)
    of its own drawn per window, summed, plus a squared part (the strap's pressure acts on the light
    path nonlinearly; it matters in running's larger swings) with power at the step rate's harmonics."""
    m, _, length = motion.shape
    dynamic = motion - motion.mean(axis=2, keepdims=True)
    lag = rng.integers(0, lead + 1, (m, 3, 1))
    lagged = np.take_along_axis(dynamic, lead - lag + np.arange(length - lead), axis=2)
    mix = (_AXES[:, None] * rng.uniform(0.6, 1.4, (m, 3, 1)) * lagged).sum(axis=1)
    mix += rng.uniform(-0.3, 0.3, (m, 1)) * (mix ** 2 - (mix ** 2).mean(axis=1, keepdims=True))
    return mix


def _wrist_motion(rng, t, effort, steps, vertical, swing):
    """(m, 3, T) acceleration in g on the sensor's axes for efforts (m, 1) in [-1, 1]: gravity plus a
    step oscillation (vertical, with its harmonic, 30 % stronger or weaker with the effort) and an
    arm swing at half the step rate, turned by the watch's tilt on the wrist (up to 0.4 rad)."""
    m = len(effort)
    f = np.clip(rng.normal(*steps, (m, 1)), 0.1, 3.5)
    a = vertical * (1 + 0.3 * effort) * rng.uniform(0.9, 1.1, (m, 1))
    b = swing * rng.uniform(0.7, 1.3, (m, 1))
    phase = rng.uniform(0, 2 * np.pi, (m, 3, 1))
    harmonic, shift = rng.uniform(0.2, 0.5, (m, 1)), rng.uniform(0, 1.6, (m, 1))   # a step's shape
    stride = 2 * np.pi * f * t + phase[:, 2]
    step = np.sin(stride) + harmonic * np.sin(2 * stride - shift)
    body = np.stack([b * np.sin(np.pi * f * t + phase[:, 0]),
                     0.5 * b * np.sin(2 * np.pi * f * t + phase[:, 1]),
                     1.0 + a * step], 1)
    axis = rng.normal(size=(m, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    k = np.cross(axis[:, :, None], -np.eye(3)[None], axis=1)   # the cross-product matrix of each axis
    angle = rng.uniform(0, 0.4, (m, 1, 1))
    rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k   # Rodrigues
    return np.einsum("mij,mjt->mit", rotation, body)


def _pulse(rng, t, hr):
    """(N, T) pulse waves at hr bpm (a beat-to-beat wobble of 3 %): a systolic peak and a smaller
    dicrotic wave, random amplitude and phase, over breathing's baseline wander."""
    m = len(hr)
    wobble = 1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3, (m, 1)) * t + rng.uniform(0, 2 * np.pi, (m, 1)))
    dt = t[1] - t[0]
    theta = 2 * np.pi * np.cumsum(hr[:, None] / 60 * wobble, axis=1) * dt + rng.uniform(0, 2 * np.pi, (m, 1))
    dicrotic, shift = rng.uniform(0.25, 0.55, (m, 1)), rng.uniform(0.4, 1.2, (m, 1))
    wave = np.sin(theta) + dicrotic * np.sin(2 * theta - shift)
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
