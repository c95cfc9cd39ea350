"""The signal contract: what a model's input is -- sampling rate, channel names in order, units,
and for band-power frames how they were computed -- so that a model trained on 128 Hz band power
from Fz, Cz, Pz cannot be fed 256 Hz raw data from other electrodes by mistake.

A spec is a dict {"fs": Hz or None, "channels": [names] or None, "units": str or None,
"bandpower": BandPower.config or None} ("fs" is the raw sampling rate, also for band frames).
It travels beside a windows file as X.signal.json (written by biosig.windows and
biosig.bandpower), comes from train.py's --fs / --channel-names too, is stored in the checkpoint
("signal"), and infer.py and the streaming decoder check their input against it: channels in
another order are reordered by name (ignoring case where unambiguous), a missing channel or
another sampling rate is refused, and raw windows for a model trained on band-power frames are
turned into those frames.
"""
import json
import os

import numpy as np

from ..errors import UserError, warn

KEYS = ("fs", "channels", "units", "bandpower")


def sidecar(path):
    """X.npy -> X.signal.json (beside it)."""
    return os.path.splitext(path)[0] + ".signal.json"


def read(path):
    """The spec beside a windows file, or {} when there is none."""
    if not path or not os.path.isfile(sidecar(path)):
        return {}
    try:
        with open(sidecar(path)) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{sidecar(path)}: cannot read the signal description ({e})") from None
    if not isinstance(spec, dict) or not set(spec) <= set(KEYS):
        raise UserError(f"{sidecar(path)}: a signal description is a JSON object with keys {', '.join(KEYS)}")
    spec = {k: v for k, v in spec.items() if v is not None}
    channels = spec.get("channels")
    if channels is not None and (not isinstance(channels, list) or len(set(channels)) != len(channels)):
        raise UserError(f"{sidecar(path)}: channels must be a list of distinct names")
    return spec


def write(path, spec):
    """Write X.signal.json beside `path` (the keys that are known)."""
    from ..atomic import write_json
    write_json(sidecar(path), {k: spec.get(k) for k in KEYS})


def names(text):
    """--channel-names 'Fz,Cz,Pz' -> ['Fz', 'Cz', 'Pz'] (None stays None)."""
    if text is None:
        return None
    out = [s.strip() for s in text.split(",")]
    if not all(out) or len(set(out)) != len(out):
        raise UserError(f"--channel-names {text!r}: comma-separated names, none empty, none twice")
    return out


def match_channels(have, want, where, of=""):
    """Channel names `want` found among an input's `have` -> their indices in `have`, in want's
    order. A name not there exactly is matched ignoring case when that is unambiguous (one line
    says so): amplifiers write FZ or Fz for the same electrode. Two names that differ only in case
    (in have or in want) are matched exactly only, and the refusal says why. `of` ends the
    refusal's first part ("of the 3 model.pt was trained on")."""
    def fold(names):
        folded = {}
        for i, name in enumerate(names):
            folded.setdefault(name.casefold(), []).append(i)
        return folded
    have_folded, want_folded = fold(have), fold(want)
    order, missing, ambiguous, by_case = [], [], [], []
    for name in want:
        if name in have:
            order.append(have.index(name))
            continue
        key = name.casefold()
        candidates = have_folded.get(key, [])
        if len(candidates) == 1 and len(want_folded[key]) == 1:
            order.append(candidates[0])
            by_case.append(f"{have[candidates[0]]} as {name}")
        else:
            missing.append(name)
            if candidates:
                ambiguous.append(name)
    if missing:
        alike = [", ".join(dict.fromkeys([want[i] for i in want_folded[n.casefold()]]
                                         + [have[i] for i in have_folded[n.casefold()]])) for n in ambiguous]
        why = "".join(f" ({names}: equal but for case, so matched exactly only)" for names in alike)
        raise UserError(f"{where}: has no channel {', '.join(missing)}{of}{why}")
    if by_case:
        warn(f"{where}: channels matched ignoring case: {', '.join(by_case)}")
    return order


def channel_order(have, trained, where, ckpt_path, those=False):
    """An input's channel names `have` against the `trained` ones of the checkpoint at ckpt_path
    -> the indices into `have` that give trained's order (match_channels), or None when `have`
    is in that order already (FZ for Fz: nothing to move). A missing channel is refused; its
    message names the checkpoint's channels ("of those ..." when `those`, "of the 3 ..." else)."""
    if have == trained:
        return None
    count = "those" if those else f"the {len(trained)}"
    order = match_channels(have, trained, where, f" of {count} {ckpt_path} was trained on ({', '.join(trained)})")
    return None if order == list(range(len(have))) else order


def given(path, fs=None, channel_names=None, parquet_channels=None):
    """The spec of an input: its sidecar, with --fs / --channel-names (which must agree with it)
    and a parquet input's signal columns."""
    spec = read(path)
    flags = {"fs": fs, "channels": names(channel_names) if isinstance(channel_names, str) else channel_names}
    if parquet_channels and not flags["channels"]:
        flags["channels"] = list(parquet_channels)
    for key, value in flags.items():
        if value is None:
            continue
        if key in spec and spec[key] != value:
            flag = {"fs": "--fs", "channels": "--channel-names" if channel_names else "the signal columns"}[key]
            show = (lambda v: ",".join(v) if isinstance(v, list) else f"{v:g}")      # noqa: E731
            raise UserError(f"{path}: {flag} {show(value)} contradicts {sidecar(path)} ({show(spec[key])})")
        spec[key] = value
    return spec


def check_shape(spec, shape, where):
    """The spec's channels against windows (N, C, F, T)."""
    if spec.get("channels") and len(spec["channels"]) != shape[1]:
        raise UserError(f"{where}: {len(spec['channels'])} channel names for C={shape[1]} channels")
    if spec.get("bandpower") and len(spec["bandpower"]["bands"]) != shape[2]:
        raise UserError(f"{where}: its signal description has {len(spec['bandpower']['bands'])} bands, "
                        f"the windows F={shape[2]}")


def describe(spec):
    parts = []
    if spec.get("fs"):
        parts.append(f"{spec['fs']:g} Hz")
    if spec.get("bandpower"):
        parts.append("band power (" + ", ".join(spec["bandpower"]["bands"]) + ")")
    if spec.get("channels"):
        parts.append(",".join(spec["channels"]))
    return " ".join(parts) or "not described"


def conform(x, spec, trained, where, ckpt_path, channel_axis=1, source=None):
    """Input windows/recordings x (..., C, F, T) as the model was trained on them: channels
    picked and reordered by name, raw samples turned into the checkpoint's band-power frames.
    spec: the input's; trained: the checkpoint's; source: where spec's rate came from (printed
    when raw samples are made into frames). One line (UserError) when they cannot match."""
    if not trained:
        return x
    bp_trained, bp_given = trained.get("bandpower"), spec.get("bandpower")
    n_bands = x.shape[channel_axis + 1]
    raw = bp_trained and not bp_given and n_bands == 1 != len(bp_trained["bands"])
    if raw and not spec.get("fs"):                          # the rate decides which bins make a band: never assumed
        beside = f", or a {os.path.basename(sidecar(where))} beside it" if str(where).endswith(".npy") else ""
        raise UserError(f"{where}: raw samples of unknown sampling rate; making {ckpt_path}'s band-power frames needs "
                        f"it: give --fs (Hz){beside}")
    if trained.get("fs") and spec.get("fs") and abs(trained["fs"] - spec["fs"]) > 1e-6:
        raise UserError(f"{where}: sampled at {spec['fs']:g} Hz, {ckpt_path} was trained on {trained['fs']:g} Hz "
                        f"(resample it first)")
    if trained.get("units") and spec.get("units") and trained["units"] != spec["units"]:
        raise UserError(f"{where}: in {spec['units']}, {ckpt_path} was trained on {trained['units']} (scale it first)")
    order = None
    if trained.get("channels") and spec.get("channels"):
        order = channel_order(spec["channels"], trained["channels"], where, ckpt_path)
    if bp_given and bp_given != bp_trained:
        raise UserError(f"{where}: band-power frames ({describe(spec)}) computed unlike {ckpt_path}'s input "
                        f"({describe(trained) if bp_trained else 'raw samples'})")
    if bp_trained and not bp_given and n_bands == len(bp_trained["bands"]):
        warn(f"{where}: taken as band-power frames like {ckpt_path}'s (F={len(bp_trained['bands'])}); no description "
             f"says how they were computed")
    bp = None
    if bp_trained and not bp_given and n_bands != len(bp_trained["bands"]):
        if n_bands != 1:
            raise UserError(f"{where}: {ckpt_path} takes band-power frames; give raw samples (F=1), or frames "
                            f"described by their {os.path.basename(sidecar(where))}")
        from .bandpower import BandPower
        bp = BandPower.from_config(bp_trained)
        rate = f"{spec['fs']:g} Hz" + (f", {source}" if source else "")
        print(f"{where}: raw samples (T={x.shape[-1]} at {rate}) made into {ckpt_path}'s band-power frames "
              f"(F={len(bp.bands)}, T={bp.n_frames(x.shape[-1])}): {bp.describe()}")
    unchecked = [k for k in ("fs", "channels") if trained.get(k) and not spec.get(k)]
    if unchecked:                               # after the refusals: an error is the only line
        what = " and ".join({"fs": "sampling rate", "channels": "channel names and order"}[k] for k in unchecked)
        warn(f"{where}: its {what} unknown ({os.path.basename(sidecar(where))}, "
             f"{', '.join({'fs': '--fs', 'channels': '--channel-names'}[k] for k in unchecked)}): not checked against "
             f"{ckpt_path}'s {describe(trained)}")
    if order is None and bp is None:
        return x

    def fix(a):         # band power first (a block at a time, from disk), then the smaller frames reordered
        a = bp(a[(slice(None),) * (channel_axis + 1) + (0,)]) if bp is not None else a       # a view: F=1 dropped
        return np.take(a, order, axis=channel_axis) if order is not None else a
    if channel_axis == 1 and isinstance(x, np.memmap):
        return Conformed(x, fix)                 # batch by batch: the file stays on disk
    return fix(x)


class Conformed:
    """Windows (N, C, F, T) on disk, conformed a slice at a time (what Predictor.predict reads)."""

    def __init__(self, x, fix):
        self.x, self.fix = x, fix
        self.shape = (len(x), *fix(np.asarray(x[:1])).shape[1:])
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        return self.fix(np.asarray(self.x[index]))
