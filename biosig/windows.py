"""From recordings to windows: continuous recordings cut into windows (N, C, 1, T) for train.py.

    python -m biosig.windows --recording rec.npy --fs 128 --length 2 --labels labels.npy --out ex
    python -m biosig.windows --recording s01.edf s02.edf --length 2 --stride 1 --out ex     # labels: annotations
    python -m biosig.windows --recording s01.vhdr --events s01_events.csv --length 4 --out ex
    python -m biosig.windows --epochs sub-01-epo.fif --out ex                               # MNE epochs as they are

A recording is a .npy array (C, T_total) with --fs (and --channel-names), or any file MNE reads
(EDF, BDF, BrainVision .vhdr, .fif, EEGLAB .set, ...; pip install mne), which gives its own
sampling rate and channel names. Window i of a recording covers samples [i*stride, i*stride +
length). Labels, one source:
  --labels      a per-sample label array (T_total,) per recording (integers)
  --events      a CSV per recording with columns onset,duration,label (seconds; label a name or number)
  annotations   a file's own annotations (MNE), when neither is given
A window's label is the most common label of its samples (--label-rule majority) or that of its
center sample (center); windows whose label is none (no event covers them) are left out. Event
names become classes 0..K-1 in sorted order (classes.json, for train.py --class-names).
Each recording is a group (groups.npy: its index; groups.json: the names), for --split group.

Writes OUT/X.npy (N, C, 1, T) float32, y.npy, groups.npy, groups.json, classes.json (named
labels), X.signal.json ({"fs", "channels", "units"}: what the windows are; train.py stores it in
the checkpoint, infer.py checks new recordings against it). Memory-bounded: the
windows go straight to a memory-mapped X.npy, a block of recording at a time; OUT appears
only once complete.
"""
import csv
import json
import mmap
import os
import shutil

import numpy as np

from . import signalspec
from .errors import ArgumentParser, UserError, positive_float, prog, stop_on_sigterm, warn

MNE_HINT = "reading {} needs MNE: pip install mne"
VOLTS = {"eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs", "bio"}     # MNE channel types given in volts
BAD = ("bad", "edge")          # annotations MNE marks as bad spans (BAD_muscle, EDGE boundary): not classes


def signal_channels(inst):
    """An MNE Raw's or Epochs' channels but its trigger (stim) ones: EEG, MEG, ECG, EMG, EOG, ... stay."""
    return [i for i, kind in enumerate(inst.get_channel_types()) if kind != "stim"]


def first_line(e):
    """An exception as a short line: its type and the first line of its message, if any."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__
BLOCK_BYTES = 16 << 20      # recording read at a time (float64, as MNE gives it): bounds the memory


def mapped(path, what):
    """A .npy opened memory-mapped, never unpickled (biosig.data would import torch: ~300 MB resident
    for a tool that needs none)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the {what} ({e})") from None


def _mne():
    try:
        import mne
    except ImportError:
        return None
    mne.set_log_level("ERROR")
    return mne


class Recording:
    """One recording: fs, channels (names or None), units, n_samples, read(start, stop) -> (C, n)
    float32, and annotations() -> [(onset s, duration s, label)]."""

    def __init__(self, path, fs=None, channel_names=None, pick=None, units=None):
        self.path = path
        if os.path.isdir(path):
            raise UserError(f"{path}: is a directory, not a recording file")
        if not os.path.isfile(path):
            raise UserError(f"{path}: recording not found")
        if path.endswith(".npy"):
            self.data = mapped(path, "recording")
            if self.data.ndim != 2:
                raise UserError(f"{path}: a recording .npy is (C, T_total), got shape {tuple(self.data.shape)}")
            spec = signalspec.given(path, fs, channel_names)       # its .signal.json, if any, with the flags
            fs, channel_names = spec.get("fs"), spec.get("channels")
            units = units or spec.get("units")
            if fs is None:
                raise UserError(f"{path}: give its sampling rate, --fs HZ")
            self.fs, self.units, self.raw = float(fs), units, None
            self.channels = channel_names
            if channel_names is not None and len(channel_names) != self.data.shape[0]:
                raise UserError(f"{path}: --channel-names names {len(channel_names)} channels, the recording has "
                                f"{self.data.shape[0]}")
        else:
            mne = _mne()
            if mne is None:
                raise UserError(MNE_HINT.format(path))
            try:
                raw = mne.io.read_raw(path, preload=False, verbose="error")
                self.raw = raw.pick(signal_channels(raw))    # no trigger (stim/status) channels
            except Exception as e:       # MNE's many reader errors: a file it cannot read is the user's
                raise UserError(f"{path}: MNE cannot read it as a recording ({first_line(e)})") from None
            self.fs, self.channels = float(self.raw.info["sfreq"]), list(self.raw.ch_names)
            self.units = "V" if set(self.raw.get_channel_types()) <= VOLTS else None
            if fs is not None and abs(fs - self.fs) > 1e-6:
                raise UserError(f"{path}: is sampled at {self.fs:g} Hz, not --fs {fs:g}")
            if channel_names is not None and channel_names != self.channels:
                raise UserError(f"{path}: its header names its channels {','.join(self.channels)}; --channel-names "
                                f"is for .npy recordings")
            if units is not None:
                raise UserError(f"{path}: MNE gives its samples in SI units (V); --units is for .npy recordings")
            self.data = None
        self.index = list(range(self.n_channels))
        if pick:
            if self.channels is None:
                raise UserError(f"{path}: --channels picks by name; name the recording's channels with "
                                f"--channel-names")
            missing = [c for c in pick if c not in self.channels]
            if missing:
                raise UserError(f"{path}: has no channel {', '.join(missing)} (it has {', '.join(self.channels)})")
            self.index = [self.channels.index(c) for c in pick]
            self.channels = list(pick)

    @property
    def n_channels(self):
        return self.data.shape[0] if self.data is not None else len(self.raw.ch_names)

    @property
    def n_samples(self):
        return self.data.shape[1] if self.data is not None else self.raw.n_times

    def read(self, start, stop):
        if self.data is not None:
            return np.asarray(self.data[self.index, start:stop], dtype=np.float32)
        return self.raw.get_data(picks=self.index, start=start, stop=stop).astype(np.float32)

    def release(self):
        """Let go of the pages of a memory-mapped recording read so far (they would stay resident)."""
        mapped = getattr(self.data, "_mmap", None)
        if mapped is not None and hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_DONTNEED)

    def annotations(self):
        if self.raw is None or not len(self.raw.annotations):
            return []
        a = self.raw.annotations
        starts = self.raw.time_as_index(a.onset, origin=a.orig_time) / self.fs
        return [(float(s), float(d), str(name)) for s, d, name in zip(starts, a.duration, a.description)]


def read_events(path):
    """events CSV (onset,duration,label; seconds) -> [(onset, duration, label)]."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:          # a spreadsheet's BOM is no column name
            rows = list(csv.DictReader(f, skipinitialspace=True))
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read events ({first_line(e)})") from None
    rows = [{(k or "").strip(): v for k, v in r.items()} for r in rows]
    if not rows or not {"onset", "duration", "label"} <= set(rows[0]):
        raise UserError(f"{path}: an events file is a CSV with the columns onset,duration,label (seconds)")
    events = []
    for i, r in enumerate(rows, 2):
        if any(r[k] is None or not r[k].strip() for k in ("onset", "duration", "label")):
            raise UserError(f"{path}: line {i}: needs an onset, a duration and a label")
        try:
            onset, duration = float(r["onset"]), float(r["duration"])
        except ValueError:
            raise UserError(f"{path}: line {i}: onset and duration must be numbers (seconds)") from None
        if not (np.isfinite(onset) and np.isfinite(duration)) or onset < 0 or duration < 0:
            raise UserError(f"{path}: line {i}: onset and duration must be finite and 0 or more")
        events.append((onset, duration, r["label"].strip()))
    return events


def is_bad(name):
    return name.lower().startswith(BAD)


def sample_labels(events, n, fs, classes):
    """[(onset, duration, name)] -> (n,) class index per sample: -1 where no class's event is,
    -2 in a bad span (a window touching one is left out, as MNE rejects by annotation)."""
    labels = np.full(n, -1, np.int64)
    for onset, duration, name in sorted(events, key=lambda e: is_bad(e[2])):      # bad spans win
        if name not in classes and not is_bad(name):
            continue
        a = int(round(onset * fs))
        b = max(a + 1, int(round((onset + duration) * fs)))     # an instant event labels its sample
        labels[max(a, 0):min(b, n)] = -2 if is_bad(name) else classes.index(name)
    return labels


def window_labels(labels, starts, length, rule):
    """Per-sample labels, window starts -> (n_windows,) labels by majority (ties: the lowest) or the
    center sample; -1: none; -2: the window touches a bad span. A block of windows at a time."""
    out = np.empty(len(starts), np.int64)
    per_block = max(1, (1 << 21) // length)
    for b in range(0, len(starts), per_block):
        s = starts[b:b + per_block]
        rows = labels[s[:, None] + np.arange(length)]
        if rule == "center":
            got = rows[:, length // 2]
        else:
            got = np.empty(len(rows), np.int64)
            for i, r in enumerate(rows):
                values, counts = np.unique(r, return_counts=True)
                got[i] = values[counts.argmax()]
        out[b:b + len(s)] = np.where((rows == -2).any(1), -2, got)
    return out


def from_epochs(epochs):
    """MNE Epochs -> (X (N, C, 1, T) float32 of the data channels (no stim), y (N,) classes 0..K-1
    in event-code order (the events that have epochs), class names, signal {"fs", "channels", "units"})."""
    picks = signal_channels(epochs)
    present = set(epochs.events[:, 2].tolist())
    codes = sorted(((n, c) for n, c in epochs.event_id.items() if c in present), key=lambda kv: kv[1])
    index = {code: i for i, (_, code) in enumerate(codes)}
    X = epochs.get_data(picks=picks, copy=True).astype(np.float32)[:, :, None]
    y = np.array([index[c] for c in epochs.events[:, 2]], np.int64)
    types = [epochs.get_channel_types()[i] for i in picks]
    units = "V" if set(types) <= VOLTS else None
    return X, y, [name for name, _ in codes], {"fs": float(epochs.info["sfreq"]),
                                               "channels": [epochs.ch_names[i] for i in picks], "units": units}


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.windows"),
                       description="Cut continuous recordings (.npy (C, T_total), or EDF/BDF/BrainVision/FIF/... "
                       "through MNE) into windows X (N, C, 1, T) with labels and groups, for train.py.")
    p.add_argument("--recording", nargs="+", metavar="PATH", help="recordings: .npy (C, T_total) with --fs, or files "
                   "MNE reads; each is a group")
    p.add_argument("--epochs", metavar="EPO.FIF", help="instead: MNE epochs (-epo.fif) to X/y as they are")
    p.add_argument("--out", required=True, help="directory to write X.npy, y.npy, groups.npy, ... (must be new or empty)")
    p.add_argument("--fs", type=positive_float, help="sampling rate in Hz (.npy recordings; checked for others)")
    p.add_argument("--channel-names", help="names of a .npy recording's channels, comma-separated")
    p.add_argument("--channels", help="use these channels, in this order (comma-separated names)")
    p.add_argument("--length", type=positive_float, help="window length in seconds")
    p.add_argument("--stride", type=positive_float, help="seconds between window starts (default: --length)")
    p.add_argument("--labels", nargs="+", metavar="NPY", help="per-sample integer labels (T_total,), one per recording")
    p.add_argument("--events", nargs="+", metavar="CSV", help="events onset,duration,label (seconds), one per recording")
    p.add_argument("--classes", help="event names that are classes, in class order: comma-separated, or the "
                   "training windows' classes.json (for a new recording, so that its labels mean the same); default: "
                   "every name, sorted. Windows of other events are left out")
    p.add_argument("--label-rule", choices=["majority", "center"], default="majority",
                   help="a window's label: its samples' most common one, or its center sample's")
    p.add_argument("--units", help=".npy recordings: the samples' units, recorded in signal.json (MNE files: V)")
    return p


def main(argv=None):
    stop_on_sigterm()                                  # kill, scancel: cleaned up as Ctrl-C is
    args = get_args_parser().parse_args(argv)
    if bool(args.recording) == bool(args.epochs):
        raise UserError("give --recording PATH... (continuous recordings) or --epochs EPO.FIF, one of them")
    if args.epochs:
        for flag in ("channels", "channel_names", "length", "stride", "labels", "events", "classes", "units", "fs"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} is for cutting recordings; --epochs takes MNE's epochs "
                                f"as they are")
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise UserError(f"{args.out}: --out exists and is not an empty directory")
    if args.epochs:
        mne = _mne()
        if mne is None:
            raise UserError(MNE_HINT.format(args.epochs))
        if not os.path.isfile(args.epochs):
            raise UserError(f"{args.epochs}: not found")
        try:
            epochs = mne.read_epochs(args.epochs, preload=False, verbose="error")
        except Exception as e:
            raise UserError(f"{args.epochs}: MNE cannot read epochs from it ({first_line(e)})") from None
        X, y, names, signal = from_epochs(epochs)
    try:
        if args.epochs:
            return _write(args.out, X, y, np.zeros(len(X), np.int64), names, [os.path.basename(args.epochs)], signal)
        return _cut(args)
    except BaseException:                      # Ctrl-C, a full disk: no OUT.partial left behind
        shutil.rmtree(args.out.rstrip("/") + ".partial", ignore_errors=True)
        raise


def _class_names(text):
    """--classes a,b,c or a classes.json (the training windows', so a new recording's labels mean the same)."""
    if text and text.endswith(".json"):
        try:
            with open(text) as f:
                names = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"{text}: cannot read the class names ({e})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(f"{text}: class names are a JSON list of strings")
        return names
    return _split(text)


def _split(text, flag=None):
    """'a,b,c' -> ['a', 'b', 'c'] (None stays None); names must be distinct."""
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if len(set(names)) != len(names):
        raise UserError(f"{flag or '--classes'} {text!r}: a name is given twice")
    return names


def _cut(args):
    if args.length is None:
        raise UserError("--length SECONDS is needed to cut recordings into windows")
    for flag, given in (("--labels", args.labels), ("--events", args.events)):
        if given and len(given) != len(args.recording):
            raise UserError(f"{flag}: give one per recording ({len(args.recording)}), got {len(given)}")
    if args.labels and args.events:
        raise UserError("--labels and --events: give the labels one way")
    if len(set(map(os.path.realpath, args.recording))) != len(args.recording):
        raise UserError("--recording: a file is given twice (each recording is a group of its own)")
    recs = [Recording(p, args.fs, _split(args.channel_names, "--channel-names"), _split(args.channels, "--channels"),
                      args.units) for p in args.recording]
    first = recs[0]
    for r in recs[1:]:
        if r.fs != first.fs or r.channels != first.channels or len(r.index) != len(first.index):
            raise UserError(f"{r.path}: its sampling rate or channels differ from {first.path}'s "
                            f"({r.fs:g} Hz {r.channels or len(r.index)} vs {first.fs:g} Hz "
                            f"{first.channels or len(first.index)}); pick common ones with --channels")
    fs = first.fs
    length, stride = int(round(args.length * fs)), int(round((args.stride or args.length) * fs))
    if length < 1 or stride < 1:
        raise UserError(f"--length {args.length} s or --stride at {fs:g} Hz is under one sample")
    events = [read_events(p) for p in args.events] if args.events else [r.annotations() for r in recs]
    named = not args.labels and any(events)
    if args.classes and not named:
        raise UserError("--classes picks event names: give --events, or recordings with annotations")
    found = sorted({e[2] for ev in events for e in ev if not is_bad(e[2])})
    classes = (_class_names(args.classes) or found) if named else None
    if named and args.classes and not set(classes) & set(found):
        raise UserError(f"--classes {args.classes}: no event has any of these names (the events: {', '.join(found)})")
    if named and args.classes and not args.classes.endswith(".json") and set(classes) - set(found):
        raise UserError(f"--classes: no event is named {', '.join(sorted(set(classes) - set(found)))} "
                        f"(the events: {', '.join(found)})")
    if named:
        for r, ev in zip(recs, events):
            if not any(e[2] in classes for e in ev):
                warn(f"{r.path}: no event of the classes ({', '.join(classes)}): none of its windows is kept")

    plans = []                                   # per recording: window starts kept and their labels
    for k, r in enumerate(recs):
        starts = np.arange(0, r.n_samples - length + 1, stride)
        if args.labels:
            lab = np.asarray(mapped(args.labels[k], "labels"))
            if lab.shape != (r.n_samples,) or not np.issubdtype(lab.dtype, np.integer):
                raise UserError(f"{args.labels[k]}: per-sample labels are integers of shape ({r.n_samples},), got "
                                f"{lab.dtype} {tuple(lab.shape)}")
        elif named:
            lab = sample_labels(events[k], r.n_samples, fs, classes)
        else:
            lab = None
        y = None if lab is None else window_labels(lab, starts, length, args.label_rule)
        keep = np.ones(len(starts), bool) if y is None else y >= 0
        plans.append((starts[keep], None if y is None else y[keep]))
    n = sum(len(s) for s, _ in plans)
    if n == 0:
        raise UserError(f"no window: the recordings are shorter than --length {args.length} s, or no window has a "
                        f"label")
    tmp = args.out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    per_block = max(1, BLOCK_BYTES // (8 * len(first.index) * max(stride, length)))
    with open(os.path.join(tmp, "X.npy"), "wb") as f:       # appended block by block: no page of X stays resident
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (n, len(first.index), 1, length)})
        for r, (starts, _) in zip(recs, plans):
            for b in range(0, len(starts), per_block):
                s = starts[b:b + per_block]
                block = r.read(int(s[0]), int(s[-1]) + length)                 # (C, span)
                if not np.isfinite(block).all():
                    raise UserError(f"{r.path}: holds NaN or Inf (around {s[0] / fs:.1f} s)")
                view = np.lib.stride_tricks.sliding_window_view(block, length, axis=1)[:, s - s[0]]   # (C, k, T)
                np.ascontiguousarray(view.transpose(1, 0, 2), dtype="<f4").tofile(f)
                r.release()
    y = None if plans[0][1] is None else np.concatenate([yk for _, yk in plans])
    groups = np.concatenate([np.full(len(s), k, np.int64) for k, (s, _) in enumerate(plans)])
    signal = {"fs": fs, "channels": first.channels, "units": first.units or args.units}
    return _write(args.out, None, y, groups, classes, [os.path.basename(r.path) for r in recs], signal, tmp)


def _write(out, X, y, groups, classes, group_names, signal, tmp=None):
    """Write the files into OUT.partial, then rename it to OUT: OUT appears complete or not at all."""
    if tmp is None:
        tmp = out.rstrip("/") + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        np.save(os.path.join(tmp, "X.npy"), X)
    if y is not None:
        np.save(os.path.join(tmp, "y.npy"), y)
    np.save(os.path.join(tmp, "groups.npy"), groups)
    files = {"groups.json": group_names, "X.signal.json": {**dict.fromkeys(signalspec.KEYS), **signal}}
    if classes:
        files["classes.json"] = classes
    for name, obj in files.items():
        with open(os.path.join(tmp, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    if os.path.isdir(out):
        os.rmdir(out)                               # checked empty
    os.rename(tmp, out)
    shape = np.load(os.path.join(out, "X.npy"), mmap_mode="r").shape
    counts = "" if y is None else " | windows per class " + ", ".join(
        f"{(classes or range(int(y.max()) + 1))[c] if classes else c}: {int((y == c).sum())}" for c in np.unique(y))
    print(f"{out}: X {shape} (N, C, F, T) at {signal['fs']:g} Hz from {len(group_names)} recording(s)"
          + counts + (f" | classes.json: {', '.join(classes)}" if classes else "") + ("" if y is not None else
                                                                                     " | no labels (y.npy not written)"))


if __name__ == "__main__":
    from .errors import run_cli
    run_cli(main)
