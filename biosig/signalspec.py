"""The signal contract: what a model's input is -- sampling rate, channel names in order, units,
and for band-power frames how they were computed -- so that a model trained on 128 Hz band power
from Fz, Cz, Pz cannot be fed 256 Hz raw data from other electrodes by mistake.

A spec is a dict {"fs": Hz or None, "channels": [names] or None, "units": str or None,
"bandpower": BandPower.config or None} ("fs" is the raw sampling rate, also for band frames).
It travels beside a windows file as X.signal.json (written by biosig.windows and
biosig.bandpower), comes from train.py's --fs / --channel-names too, is stored in the checkpoint
("signal"), and infer.py and the streaming decoder check their input against it: channels in
another order are reordered by name, a missing channel or another sampling rate is refused,
and raw windows for a model trained on band-power frames are turned into those frames.
"""
import json
import os

import numpy as np

from .errors import UserError, warn

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
    from .runs import write_json
    write_json(sidecar(path), {k: spec.get(k) for k in KEYS})


def names(text):
    """--channel-names 'Fz,Cz,Pz' -> ['Fz', 'Cz', 'Pz'] (None stays None)."""
    if text is None:
        return None
    out = [s.strip() for s in text.split(",")]
    if not all(out) or len(set(out)) != len(out):
        raise UserError(f"--channel-names {text!r}: comma-separated names, none empty, none twice")
    return out


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


def conform(x, spec, trained, where, ckpt_path, channel_axis=1):
    """Input windows/recordings x (..., C, F, T) as the model was trained on them: channels
    picked and reordered by name, raw samples turned into the checkpoint's band-power frames.
    spec: the input's; trained: the checkpoint's. One line (UserError) when they cannot match."""
    if not trained:
        return x
    unchecked = [k for k in ("fs", "channels") if trained.get(k) and not spec.get(k)]
    if unchecked:
        what = " and ".join({"fs": "sampling rate", "channels": "channel names and order"}[k] for k in unchecked)
        warn(f"{where}: its {what} unknown ({os.path.basename(sidecar(where))}, "
             f"{', '.join({'fs': '--fs', 'channels': '--channel-names'}[k] for k in unchecked)}): not checked against "
             f"{ckpt_path}'s {describe(trained)}")
    if trained.get("fs") and spec.get("fs") and abs(trained["fs"] - spec["fs"]) > 1e-6:
        raise UserError(f"{where}: sampled at {spec['fs']:g} Hz, {ckpt_path} was trained on {trained['fs']:g} Hz "
                        f"(resample it first)")
    if trained.get("units") and spec.get("units") and trained["units"] != spec["units"]:
        raise UserError(f"{where}: in {spec['units']}, {ckpt_path} was trained on {trained['units']} (scale it first)")
    if trained.get("channels") and spec.get("channels") and trained["channels"] != spec["channels"]:
        missing = [c for c in trained["channels"] if c not in spec["channels"]]
        if missing:
            raise UserError(f"{where}: has no channel {', '.join(missing)} of the {len(trained['channels'])} "
                            f"{ckpt_path} was trained on ({', '.join(trained['channels'])})")
        order = [spec["channels"].index(c) for c in trained["channels"]]
    else:
        order = None
    bp_trained, bp_given = trained.get("bandpower"), spec.get("bandpower")
    if bp_given and bp_given != bp_trained:
        raise UserError(f"{where}: band-power frames ({describe(spec)}) computed unlike {ckpt_path}'s input "
                        f"({describe(trained) if bp_trained else 'raw samples'})")
    if bp_trained and not bp_given and x.shape[channel_axis + 1] == len(bp_trained["bands"]):
        warn(f"{where}: taken as band-power frames like {ckpt_path}'s (F={len(bp_trained['bands'])}); no description "
             f"says how they were computed")
    bp = None
    if bp_trained and not bp_given and x.shape[channel_axis + 1] != len(bp_trained["bands"]):
        if x.shape[channel_axis + 1] != 1:
            raise UserError(f"{where}: {ckpt_path} takes band-power frames; give raw samples (F=1), or frames "
                            f"described by their {os.path.basename(sidecar(where))}")
        bp = from_config(bp_trained)
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


def conform_input(X, path, fs, channel_names, predictor, ckpt_path):
    """infer.py's --x (N, C, F, T) (with --fs, --channel-names) against the checkpoint's contract:
    conform()ed. A parquet input's columns were already read by the checkpoint's channel names."""
    from .data import parquet
    if parquet.is_parquet(path):
        spec = given(None, fs, channel_names, predictor.channels)
    else:
        spec = given(path, fs, channel_names)
    check_shape(spec, X.shape, path)
    return conform(X, spec, predictor.signal, path, ckpt_path)


def from_config(config):
    """A checkpoint's bandpower entry -> the BandPower that made its frames."""
    from .bandpower import BandPower
    fs = config["fs"]
    return BandPower(fs, {k: tuple(v) for k, v in config["bands"].items()}, config["frame"] / fs, config["hop"] / fs,
                     config["method"], config["log"])
