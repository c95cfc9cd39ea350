"""Several signals at their own rates: each modality cut into windows of its own (N, C_m, 1, T_m),
window i of a session covering the same seconds in every modality, for train.py --x NAME=FILE ...

    python -m biosig.windows --recording ppg=s01_ppg.npy acc=s01_acc.npy ppg=s02_ppg.npy acc=s02_acc.npy \\
        --fs ppg=64 acc=32 --length 8 --stride 2 --events s01.csv s02.csv --out ex
    python -m biosig.windows --recording s01.edf s02.edf --modality eeg=Fz,Cz,Pz emg=EMG1,EMG2 \\
        --resample emg=64 --length 2 --out ex

Named recordings NAME=PATH: the k-th recording of each name is session k (a group), and every
name has one in each session. Or --modality NAME=CH,CH,...: each recording (MNE, or .npy with
channel names) is a session, and these of its channels are modality NAME. The per-modality
flags --fs, --channel-names, --channels, --units take NAME=VALUE (--fs ppg=64 acc=32, or
ppg=64,acc=32) or one plain value for every modality; with --modality, --fs and --channel-names
are the file's (plain). --resample NAME=HZ brings a modality to another rate (a whole ratio of
small integers to its own): scipy's resample_poly, whose anti-aliasing filter needs the
neighbours, so that modality's recording is read whole, a session at a time.

Window i of a session covers [i*stride, i*stride + length) seconds in every modality: --length
and --stride must be whole numbers of samples at every modality's rate (else one line naming
it). A session whose modalities' durations differ by a sample of the slowest or more is cut to
the shortest (said in a warning). Labels are at the first modality's rate (the first name of
--recording or --modality, after --resample): --labels, per session an integer array (T_total,)
of the first modality's samples; --events in seconds; else the annotations of the first
modality's file; a window's label is that of the first modality's samples of it (--label-rule).

Writes OUT/NAME.npy (N, C_m, 1, T_m) float32 and OUT/NAME.signal.json ({"fs", "channels",
"units"}) per modality, and, as for one signal (windows.py), y.npy, groups.npy, groups.json (each
session's first file), onsets.npy (window i's start in seconds) and classes.json.
"""
import copy
import fractions
import os
import re
import shutil

import numpy as np

from . import windows
from ..errors import UserError, needs, warn
from .recordings import Recording, read_events

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*$")
RESERVED = ("y", "groups", "onsets")            # the shared files' names


def named(text):
    """'ppg=s01.npy' -> ('ppg', 's01.npy'); a path (or a value) without a name -> (None, text)."""
    name, eq, value = str(text).partition("=")
    return (name.strip(), value.strip()) if eq and NAME.match(name.strip()) else (None, str(text))


def _pairs(values, flag, commas):
    """A flag's values -> ([(name, value)], [plain values]); 'a=1,b=2' is two pairs when commas."""
    pairs, plain = [], []
    for text in values or []:
        parts = str(text).split(",") if commas and named(text)[0] else [text]
        for part in parts:
            name, value = named(part)
            if name is None and len(parts) > 1:
                raise UserError(f"{flag} {text}: NAME=VALUE pairs, comma-separated")
            (plain if name is None else pairs).append(value if name is None else (name, value))
    return pairs, plain


def _rate(value, flag):
    try:
        hz = float(value)
    except ValueError:
        hz = -1.0
    if not np.isfinite(hz) or hz <= 0:
        raise UserError(f"{flag} {value}: a sampling rate in Hz, above 0")
    return hz


def plain(values, flag, rate=False, why="name the recordings (NAME=PATH) or give --modality"):
    """A flag given as one value for one signal -> that value (None if not given)."""
    pairs, values = _pairs(values, flag, rate)
    if pairs:
        raise UserError(f"{flag} {pairs[0][0]}={pairs[0][1]}: a value per modality; {why}")
    if len(values) > 1:
        raise UserError(f"{flag}: one value, got {len(values)} ({' '.join(map(str, values))})")
    return None if not values else _rate(values[0], flag) if rate else values[0]


def per_name(values, flag, names, rate=False):
    """A per-modality flag -> {name: value or None}: NAME=VALUE pairs, or one plain value for all."""
    pairs, values = _pairs(values, flag, rate)
    if pairs and values:
        raise UserError(f"{flag}: give NAME=VALUE for each modality or one plain value, not both")
    out = dict.fromkeys(names, plain(values, flag, rate))
    given = {}
    for name, value in pairs:
        if name not in names:
            raise UserError(f"{flag} {name}={value}: no modality is named {name} (the modalities: {', '.join(names)})")
        value = _rate(value, f"{flag} {name}=") if rate else value
        if name in given and given[name] != value:
            raise UserError(f"{flag}: {name} is given two values ({given[name]:g} and {value:g})" if rate else
                            f"{flag}: {name} is given two values ({given[name]} and {value})")
        given[name] = value
    return {**out, **given}


def run(args):
    """What biosig.windows does (biosig/cli/windows.py): one signal (windows.run), or several
    modalities cut into OUT -> the summary line. OUT.partial never stays behind."""
    recordings = [named(p) for p in args.recording or []]
    if not args.modality and not any(name for name, _ in recordings):
        if args.resample:
            raise UserError("--resample NAME=HZ is for modalities: name the recordings (NAME=PATH) or give --modality")
        one = copy.copy(args)
        one.fs = plain(args.fs, "--fs", rate=True)
        one.channel_names, one.channels, one.units = (plain(getattr(args, f), f"--{f.replace('_', '-')}")
                                                      for f in ("channel_names", "channels", "units"))
        return windows.run(one)
    if args.epochs:
        raise UserError("--epochs takes MNE's epochs as they are; modalities are cut from --recording")
    if not recordings:
        raise UserError("--modality picks channels of recordings: give them, --recording PATH...")
    sessions, names = _sessions(args, recordings)
    checked = copy.copy(args)
    checked.recording = sorted({r.path for s in sessions for r in s.values()})
    windows._check_out(checked)
    try:
        return _cut(args, sessions, names)
    except BaseException:                      # Ctrl-C, a full disk: no OUT.partial left behind
        shutil.rmtree(args.out.rstrip("/") + ".partial", ignore_errors=True)
        raise


def _sessions(args, recordings):
    """The flags -> ([{name: recording}] per session, the modality names in order)."""
    if args.modality:
        if any(name for name, _ in recordings):
            raise UserError("--modality picks channels of each recording: give the recordings unnamed (PATH), "
                            "or named (NAME=PATH) without --modality")
        if args.channels:
            raise UserError("--channels: --modality NAME=CH,CH,... picks each modality's channels")
        picks, unnamed = _pairs(args.modality, "--modality", False)
        if unnamed:
            raise UserError(f"--modality {unnamed[0]}: NAME=CH,CH,... (a name, then the channels it takes)")
        names = list(dict.fromkeys(name for name, _ in picks))
        if len(names) != len(picks):
            raise UserError("--modality: a modality is named twice")
        why = "with --modality they are the file's, one for all (--resample NAME=HZ for another rate)"
        fs = dict.fromkeys(names, plain(args.fs, "--fs", rate=True, why=why))
        channel_names = dict.fromkeys(names, plain(args.channel_names, "--channel-names", why=why))
        pick = dict(picks)
        paths = {name: [path for _, path in recordings] for name in names}
    else:
        unnamed = [path for name, path in recordings if name is None]
        if unnamed:
            raise UserError(f"--recording {unnamed[0]}: name every recording (NAME=PATH) or none")
        names = list(dict.fromkeys(name for name, _ in recordings))
        paths = {name: [path for n, path in recordings if n == name] for name in names}
        counts = {name: len(p) for name, p in paths.items()}
        if len(set(counts.values())) > 1:
            raise UserError("--recording: every session needs a recording of each modality, got "
                            + ", ".join(f"{n} {name}" for name, n in counts.items()))
        fs = per_name(args.fs, "--fs", names, rate=True)
        channel_names = per_name(args.channel_names, "--channel-names", names)
        pick = per_name(args.channels, "--channels", names)
    if _pairs(args.resample, "--resample", True)[1]:
        raise UserError("--resample NAME=HZ: name the modality to resample")
    units, resample = per_name(args.units, "--units", names), per_name(args.resample, "--resample", names, rate=True)
    clash = [n for n in names if n in RESERVED or any(o != n and o.casefold() == n.casefold() for o in names)]
    if clash:
        raise UserError(f"modality {clash[0]}: a name of its own (not y, groups or onsets; not another's but for case)")
    n = len(paths[names[0]])
    if len({os.path.realpath(path) for _, path in recordings}) != len(recordings):
        raise UserError("--recording: a file is given twice (each recording is one modality of one session)")
    sessions = [{m: Recording(paths[m][k], fs[m], windows._split(channel_names[m], "--channel-names"),
                              windows._split(pick[m], "--channels" if not args.modality else "--modality"), units[m])
                 for m in names} for k in range(n)]
    for m in names:
        windows.same_montage([s[m] for s in sessions], "--modality" if args.modality else "--channels")
        if resample[m] and abs(resample[m] - sessions[0][m].fs) > 1e-9:
            for s in sessions:
                s[m] = Resampled(s[m], resample[m], m)
    return sessions, names


def _cut(args, sessions, names):
    """Sessions [{name: recording}] -> the windows of every modality, aligned, in OUT -> the summary line."""
    if args.length is None:
        raise UserError("--length SECONDS is needed to cut recordings into windows")
    for flag, given in (("--labels", args.labels), ("--events", args.events)):
        if given and len(given) != len(sessions):
            raise UserError(f"{flag}: give one per session ({len(sessions)}), got {len(given)}")
    if args.labels and args.events:
        raise UserError("--labels and --events: give the labels one way")
    length, stride = {}, {}
    for m in names:
        fs = sessions[0][m].fs
        for flag, seconds, into in (("--length", args.length, length),
                                    ("--stride", args.stride or args.length, stride)):
            into[m] = int(round(seconds * fs))
            if abs(seconds * fs - into[m]) > 1e-6 or into[m] < 1:
                rates = ", ".join(f"{n} {sessions[0][n].fs:g} Hz" for n in names)
                raise UserError(f"{flag} {seconds:g} s is {seconds * fs:g} samples of {m} at {fs:g} Hz: give one "
                                f"that is a whole number of samples at every modality's rate ({rates})")
    first = [s[names[0]] for s in sessions]             # the labels' rate: the first modality's
    events = [read_events(p) for p in args.events] if args.events else [r.annotations() for r in first]
    is_named, classes = windows.event_classes(args, events, [r.path for r in first])
    plans = windows._plans(args, first, events if is_named else None, classes, length[names[0]], stride[names[0]])
    kept = []                                           # per session: (window indices i, their labels or None)
    for k, (s, (starts, y)) in enumerate(zip(sessions, plans)):
        fits = min(max(0, (s[m].n_samples - length[m]) // stride[m] + 1) for m in names)
        seconds = {m: s[m].n_samples / s[m].fs for m in names}
        if max(seconds.values()) - min(seconds.values()) >= 1 / min(s[m].fs for m in names):
            each = ", ".join(f"{m} {t:g} s" for m, t in seconds.items())
            warn(f"{first[k].path}: its modalities' durations differ ({each}): cut to the shortest, "
                 f"{min(seconds.values()):g} s")
        i = starts // stride[names[0]]
        kept.append((i[i < fits], None if y is None else y[i < fits]))
    n = sum(len(i) for i, _ in kept)
    if n == 0:
        raise UserError(f"no window: each session is shorter than --length {args.length:g} s in a modality, or no "
                        f"window has a label")
    tmp = args.out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shapes, signals = {}, {}
    for m in names:
        r = sessions[0][m]
        shapes[m] = (n, len(r.index), 1, length[m])
        per_block = max(1, windows.BLOCK_BYTES // (8 * len(r.index) * max(stride[m], length[m])))
        windows.write_windows(os.path.join(tmp, f"{m}.npy"), shapes[m], _parts(sessions, m, kept, stride[m]), per_block)
        signals[m] = {"fs": r.fs, "channels": r.channels, "units": r.units}
    y = None if kept[0][1] is None else np.concatenate([yk for _, yk in kept])
    groups = np.concatenate([np.full(len(i), k, np.int64) for k, (i, _) in enumerate(kept)])
    onsets = np.concatenate([i * stride[names[0]] / first[0].fs for i, _ in kept])
    windows.finish(args.out, tmp, y, groups, classes, [os.path.basename(r.path) for r in first], signals, onsets)
    return (f"{args.out}: " + ", ".join(f"{m} {shapes[m]} at {signals[m]['fs']:g} Hz" for m in names)
            + f" (N, C, F, T) from {len(sessions)} session(s)" + windows.per_class(y, classes))


def _parts(sessions, m, kept, stride):
    """(recording, window starts in its samples) per session for write_windows; a resampled
    recording let go of once its windows are written."""
    for s, (i, _) in zip(sessions, kept):
        yield s[m], i * stride
        if isinstance(s[m], Resampled):
            s[m].drop()


class Resampled:
    """A recording brought to another rate, read whole when first read (dropped once written)."""

    def __init__(self, rec, fs, name):
        ratio = fractions.Fraction(fs / rec.fs).limit_denominator(1000)
        if abs(float(ratio) * rec.fs - fs) > 1e-6 * fs:
            raise UserError(f"--resample {name}={fs:g}: not a ratio of small integers to {rec.path}'s {rec.fs:g} Hz")
        self.rec, self.ratio, self.fs, self.data = rec, ratio, float(fs), None
        self.path, self.channels, self.units, self.index = rec.path, rec.channels, rec.units, rec.index
        self.n_samples = rec.n_samples * ratio.numerator // ratio.denominator     # its own seconds, not past them

    def read(self, start, stop):
        if self.data is None:
            try:
                from scipy.signal import resample_poly
            except ImportError:
                raise needs("--resample", "scipy") from None
            data = self.rec.read(0, self.rec.n_samples).astype(np.float64)
            if not np.isfinite(data).all():
                raise UserError(f"{self.path}: holds NaN or Inf (resampling would spread it)")
            self.data = resample_poly(data, self.ratio.numerator, self.ratio.denominator, axis=1)[:, :self.n_samples]
        return self.data[:, start:stop].astype(np.float32)

    def release(self):
        pass

    def drop(self):
        self.data = None

    def annotations(self):
        return self.rec.annotations()
