"""Reading recordings: a .npy array (C, T_total) with its rate and channel names, or any file MNE
reads (EDF, BDF, BrainVision, FIF, EEGLAB, ...), a block of samples at a time; and events CSVs.
What biosig.windows cuts into windows and infer.py --stream decodes."""
import csv
import mmap
import os

import numpy as np

from . import contract
from ..errors import UserError, needs, warn

VOLTS = {"eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs", "bio"}     # MNE channel types given in volts


def signal_channels(inst):
    """An MNE Raw's or Epochs' channels but its trigger (stim) ones: EEG, MEG, ECG, EMG, EOG, ... stay."""
    return [i for i, kind in enumerate(inst.get_channel_types()) if kind != "stim"]


def first_line(e):
    """An exception as a short line: its type and the first line of its message, if any."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def mapped(path, what):
    """A .npy opened memory-mapped, never unpickled (biosig.data would import torch: ~300 MB resident
    for a tool that needs none)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the {what} ({e})") from None


def header_seconds(path):
    """An EDF/BDF header's duration in seconds (records x record length), or None (another
    format, or a header that does not say: -1 records while recording)."""
    if not path.lower().endswith((".edf", ".bdf")):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(256)
        n_records, record = int(head[236:244].decode("ascii")), float(head[244:252].decode("ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None                      # MNE's reader says what is wrong with the file
    return n_records * record if n_records > 0 and record > 0 else None


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
            spec = contract.given(path, fs, channel_names)       # its .signal.json, if any, with the flags
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
                raise needs(f"reading {path}", "mne")
            try:
                raw = mne.io.read_raw(path, preload=False, verbose="error")
                self.raw = raw.pick(signal_channels(raw))    # no trigger (stim/status) channels
            except Exception as e:       # MNE's many reader errors: a file it cannot read is the user's
                raise UserError(f"{path}: MNE cannot read it as a recording ({first_line(e)})") from None
            self.fs, self.channels = float(self.raw.info["sfreq"]), list(self.raw.ch_names)
            said, read = header_seconds(path), self.raw.n_times / self.fs
            if said is not None and read < said - 0.5 / self.fs:          # MNE reads what is there, silently
                warn(f"{path}: the header says {said:g} s, {read:g} s could be read (the file is cut short); "
                     f"only what was read is used")
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
            self.index = contract.match_channels(self.channels, pick, path, f" (it has {', '.join(self.channels)})")
            self.channels = [self.channels[i] for i in self.index]     # its own names: FZ picks Fz

    def take_order(self, channels):
        """Read this recording's channels in the order (and under the names) `channels`, when
        they are its own but for order or case (another file of the same montage)."""
        order = contract.match_channels(self.channels, channels, self.path)
        self.index, self.channels = [self.index[i] for i in order], list(channels)

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
