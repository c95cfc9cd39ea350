"""From recordings to windows: continuous recordings cut into windows (N, C, 1, T) for train.py.

    python -m biosig.windows --recording rec.npy --fs 128 --length 2 --labels labels.npy --out ex
    python -m biosig.windows --recording s01.edf s02.edf --length 2 --stride 1 --out ex     # labels: annotations
    python -m biosig.windows --recording s01.vhdr --events s01_events.csv --length 4 --out ex
    python -m biosig.windows --epochs sub-01-epo.fif --out ex                               # MNE epochs as they are

A recording is a .npy array (C, T_total) with --fs (and --channel-names), or any file MNE reads
(EDF, BDF, BrainVision .vhdr, .fif, EEGLAB .set, ...; pip install mne), which gives its own
sampling rate and channel names. Window i of a recording covers samples [i*stride, i*stride +
length) (--length/--stride rounded to whole samples, said when that changes them). Channels are
picked (--channels) and matched across recordings by name, ignoring case where unambiguous (FZ
is Fz; said in a line). A truncated EDF/BDF is said to be so and cut as far as it could be read;
events past a recording's end are counted in a warning. Labels, one source:
  --labels      a per-sample label array (T_total,) per recording (integers)
  --events      a CSV per recording with columns onset,duration,label (seconds; label a name or number)
  annotations   a file's own annotations (MNE), when neither is given
A window's label is the most common label of its samples (--label-rule majority) or that of its
center sample (center); windows whose label is none (no event covers them) are left out. Event
names become classes 0..K-1 in sorted order (classes.json, for train.py --class-names).
Each recording is a group (groups.npy: its index; groups.json: the names), for --split group.

Writes OUT/X.npy (N, C, 1, T) float32, y.npy, groups.npy, groups.json, onsets.npy (N,) float64
(each window's start in seconds in its recording; infer.py writes it beside the predictions),
classes.json (named labels), X.signal.json ({"fs", "channels", "units"}: what the windows are; train.py stores it in
the checkpoint, infer.py checks new recordings against it). Memory-bounded: the
windows go straight to a memory-mapped X.npy, a block of recording at a time; OUT appears
only once complete. Several signals at their own rates (named recordings, --modality): modalities.py.
"""
import json
import os
import shutil

import numpy as np

from . import contract
from ..errors import UserError, needs, warn
from .recordings import VOLTS, Recording, _mne, first_line, mapped, read_events, signal_channels

BAD = ("bad", "edge")          # annotations MNE marks as bad spans (BAD_muscle, EDGE boundary): not classes
BLOCK_BYTES = 16 << 20      # recording read at a time (float64, as MNE gives it): bounds the memory


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


def run(args):
    """What biosig.windows does with its parsed flags (biosig/cli/windows.py): recordings cut, or
    MNE epochs taken as they are, into OUT -> the summary line. OUT.partial never stays behind."""
    if bool(args.recording) == bool(args.epochs):
        raise UserError("give --recording PATH... (continuous recordings) or --epochs EPO.FIF, one of them")
    if args.epochs:
        for flag in ("channels", "channel_names", "length", "stride", "labels", "events", "classes", "units", "fs"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} is for cutting recordings; --epochs takes MNE's epochs")
    _check_out(args)
    if args.epochs:
        mne = _mne()
        if mne is None:
            raise needs(f"reading {args.epochs}", "mne")
        if not os.path.isfile(args.epochs):
            raise UserError(f"{args.epochs}: not found")
        try:
            epochs = mne.read_epochs(args.epochs, preload=False, verbose="error")
        except Exception as e:
            raise UserError(f"{args.epochs}: MNE cannot read epochs from it ({first_line(e)})") from None
        X, y, names, signal = from_epochs(epochs)
    try:
        if args.epochs:
            onsets = epochs.events[:, 0] / signal["fs"] + epochs.tmin       # MNE's clock (from its first_samp)
            return _write(args.out, X, y, np.zeros(len(X), np.int64), names, [os.path.basename(args.epochs)],
                          signal, onsets=onsets)
        return _cut(args)
    except BaseException:                      # Ctrl-C, a full disk: no OUT.partial left behind
        shutil.rmtree(args.out.rstrip("/") + ".partial", ignore_errors=True)
        raise


def _check_out(args):
    """--out must be new, an empty directory, or with --overwrite windows this tool wrote (X.npy,
    X.signal.json and only files of WRITTEN) holding none of the inputs: nothing else is replaced."""
    out = args.out
    if not os.path.exists(out) or (os.path.isdir(out) and not os.listdir(out)):
        return
    if not os.path.isdir(out):
        raise UserError(f"{out}: --out exists and is a file, not a directory; give another --out")
    if not args.overwrite:
        raise UserError(f"{out}: --out exists and is not an empty directory; give --overwrite to replace its "
                        f"windows, or another --out")
    names = os.listdir(out)
    pairs = {n[:-4] for n in names if n.endswith(".npy") and n[:-4] + ".signal.json" in names}   # X, or modalities
    ours = {"groups.npy", "groups.json"} <= set(names) and pairs or {"X.npy", "X.signal.json"} <= set(names)
    others = sorted(set(names) - set(WRITTEN) - {f"{p}{ext}" for p in pairs for ext in (".npy", ".signal.json")})
    if not ours or others:
        raise UserError(f"{out}: --overwrite replaces only windows written by this tool (X.npy, X.signal.json, ...); "
                        f"this directory holds " + (f"{', '.join(others[:3])}{', ...' if len(others) > 3 else ''}"
                                                    if others else "no X.npy and X.signal.json") + "; give another --out")
    inputs = [*(args.recording or []), args.epochs, *(args.labels or []), *(args.events or []), args.classes]
    root = os.path.realpath(out)
    for path in inputs:
        if path and os.path.exists(path) and os.path.realpath(path).startswith(root + os.sep):
            raise UserError(f"{path}: an input inside --out {out}, which --overwrite would remove; give another --out")


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
    first = same_montage(recs)
    fs = first.fs
    length, stride = int(round(args.length * fs)), int(round((args.stride or args.length) * fs))
    if length < 1 or stride < 1:
        raise UserError(f"--length {args.length} s or --stride at {fs:g} Hz is under one sample")
    rounded = [f"{flag} {seconds:g} s to {n} samples ({n / fs:g} s)" for flag, seconds, n in
               (("--length", args.length, length), ("--stride", args.stride, stride))
               if seconds is not None and abs(n / fs - seconds) > 1e-9]
    if rounded:
        warn(f"rounded to whole samples at {fs:g} Hz: {'; '.join(rounded)}")
    events = [read_events(p) for p in args.events] if args.events else [r.annotations() for r in recs]
    named, classes = event_classes(args, events, [r.path for r in recs])
    plans = _plans(args, recs, events if named else None, classes, length, stride)
    n = sum(len(s) for s, _ in plans)
    if n == 0:
        short = [f"{r.path} ({r.n_samples / fs:g} s)" for r in recs if r.n_samples < length]
        rest = [r.path for r in recs if r.n_samples >= length]
        why = ([f"{', '.join(short)} {'is' if len(short) == 1 else 'are'} shorter than --length {args.length:g} s"]
               if short else []) + ([f"no window of {', '.join(rest)} has a label"] if rest else [])
        raise UserError(f"no window: {'; '.join(why)}")
    tmp = args.out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    per_block = max(1, BLOCK_BYTES // (8 * len(first.index) * max(stride, length)))
    write_windows(os.path.join(tmp, "X.npy"), (n, len(first.index), 1, length),
                  [(r, starts) for r, (starts, _) in zip(recs, plans)], per_block)
    y = None if plans[0][1] is None else np.concatenate([yk for _, yk in plans])
    groups = np.concatenate([np.full(len(s), k, np.int64) for k, (s, _) in enumerate(plans)])
    signal = {"fs": fs, "channels": first.channels, "units": first.units or args.units}
    onsets = np.concatenate([s / fs for s, _ in plans])          # float64 seconds from each recording's start
    return _write(args.out, None, y, groups, classes, [os.path.basename(r.path) for r in recs], signal, tmp,
                  onsets=onsets)


def event_classes(args, events, paths):
    """Each recording's events (its --events CSV or annotations) -> (whether the labels are named
    events, the class names in class order or None): --classes checked against the events' names."""
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
        for r, ev in zip(paths, events):
            if not any(e[2] in classes for e in ev):
                warn(f"{r}: no event of the classes ({', '.join(classes)}): none of its windows is kept")
    return named, classes


def same_montage(recs, what="--channels"):
    """Recordings of one montage: the same rate and channels (another order or case of the same
    names is taken in the first's) -> the first; else one line naming the odd one."""
    first = recs[0]
    for r in recs[1:]:
        if (r.channels and first.channels and len(r.channels) == len(first.channels)
                and {c.casefold() for c in r.channels} == {c.casefold() for c in first.channels}):
            r.take_order(first.channels)         # the same montage, named in another order or case
        if r.fs != first.fs or r.channels != first.channels or len(r.index) != len(first.index):
            raise UserError(f"{r.path}: its sampling rate or channels differ from {first.path}'s "
                            f"({r.fs:g} Hz {r.channels or len(r.index)} vs {first.fs:g} Hz "
                            f"{first.channels or len(first.index)}); pick common ones with {what}")
    return first


def write_windows(path, shape, parts, per_block):
    """Windows (N, C, 1, T) float32 written to path from parts [(recording, starts in samples)]: the
    header, then per_block windows at a time appended (no page of a recording or of them stays resident)."""
    length = shape[-1]
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for r, starts in parts:
            for b in range(0, len(starts), per_block):
                s = starts[b:b + per_block]
                block = r.read(int(s[0]), int(s[-1]) + length)                 # (C, span)
                if not np.isfinite(block).all():
                    raise UserError(f"{r.path}: holds NaN or Inf (around {s[0] / r.fs:.1f} s)")
                view = np.lib.stride_tricks.sliding_window_view(block, length, axis=1)[:, s - s[0]]   # (C, k, T)
                np.ascontiguousarray(view.transpose(1, 0, 2), dtype="<f4").tofile(f)
                r.release()


def _plans(args, recs, events, classes, length, stride):
    """Per recording: (the starts of the windows kept, their labels or None). events: each
    recording's [(onset, duration, name)] when the labels are named events, else None."""
    fs, plans = recs[0].fs, []
    for k, r in enumerate(recs):
        starts = np.arange(0, r.n_samples - length + 1, stride)
        if args.labels:
            lab = np.asarray(mapped(args.labels[k], "labels"))
            if lab.shape != (r.n_samples,) or not np.issubdtype(lab.dtype, np.integer):
                raise UserError(f"{args.labels[k]}: per-sample labels are integers of shape ({r.n_samples},), got "
                                f"{lab.dtype} {tuple(lab.shape)}")
        elif events is not None:
            lab = sample_labels(events[k], r.n_samples, fs, classes)
            late = [e for e in events[k] if e[2] in classes and round(e[0] * fs) >= r.n_samples]
            if late:
                warn(f"{r.path}: {len(late)} event(s) start past its end ({r.n_samples / fs:g} s; the first at "
                     f"{min(e[0] for e in late):g} s): dropped")
        else:
            lab = None
        y = None if lab is None else window_labels(lab, starts, length, args.label_rule)
        keep = np.ones(len(starts), bool) if y is None else y >= 0
        plans.append((starts[keep], None if y is None else y[keep]))
    return plans


# every file _write may write (what --overwrite may replace, with each modality's NAME.npy and NAME.signal.json)
WRITTEN = ("X.npy", "y.npy", "groups.npy", "onsets.npy", "groups.json", "X.signal.json", "classes.json")


def _write(out, X, y, groups, classes, group_names, signal, tmp=None, onsets=None):
    """Write the files into OUT.partial, then rename it to OUT: OUT appears complete or not at all.
    onsets (N,): each window's start in seconds in its recording (onsets.npy). -> the summary line."""
    if tmp is None:
        tmp = out.rstrip("/") + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        np.save(os.path.join(tmp, "X.npy"), X)
    finish(out, tmp, y, groups, classes, group_names, {"X": signal}, onsets)
    shape = np.load(os.path.join(out, "X.npy"), mmap_mode="r").shape
    return (f"{out}: X {shape} (N, C, F, T) at {signal['fs']:g} Hz from {len(group_names)} recording(s)"
            + per_class(y, classes))


def finish(out, tmp, y, groups, classes, group_names, signals, onsets=None):
    """The shared files (y, groups, onsets, groups.json, classes.json) and NAME.signal.json for each
    of signals {NAME: signal} written into tmp beside the windows, then tmp renamed to OUT."""
    if y is not None:
        np.save(os.path.join(tmp, "y.npy"), y)
    np.save(os.path.join(tmp, "groups.npy"), groups)
    if onsets is not None:
        np.save(os.path.join(tmp, "onsets.npy"), np.asarray(onsets, np.float64))
    files = {"groups.json": group_names,
             **{f"{name}.signal.json": {**dict.fromkeys(contract.KEYS), **sig} for name, sig in signals.items()}}
    if classes:
        files["classes.json"] = classes
    for name, obj in files.items():
        with open(os.path.join(tmp, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    old = out.rstrip("/") + ".replaced"
    if os.path.isdir(out) and os.listdir(out):      # --overwrite (checked): the old windows go once the new are in
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
    elif os.path.isdir(out):
        os.rmdir(out)                               # checked empty
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def per_class(y, classes):
    """The summary line's end: windows per class, the class names, or that there are no labels."""
    if y is None:
        return " | no labels (y.npy not written)"
    counts = " | windows per class " + ", ".join(
        f"{(classes or range(int(y.max()) + 1))[c] if classes else c}: {int((y == c).sum())}" for c in np.unique(y))
    return counts + (f" | classes.json: {', '.join(classes)}" if classes else "")
