"""Several inputs and several targets, read and checked (--x NAME=PATH ..., --y NAME=PATH ...).

Every input is its own windows file (N, C_m, F_m, T_m) at its own rate: .npy with a NAME.signal.json
beside it (or --fs NAME=HZ), or a parquet table of its own. They must cover the same N windows
(counts equal) of the same duration (T_m / fs_m equal within a sample); each target is one
file of N targets (or, beside a parquet input, a column of the first input's table).
"""
import numpy as np

from .. import named
from ..data import parquet, read_source
from ..data.npy import read_targets
from ..errors import UserError
from ..signals import contract as signalspec


def read(x, y, flags, kinds):
    """x: a path or {name: path}; y: a path, {name: path} or None; kinds: the target kind (a task's
    target_kind) or {target name: kind}. -> (X, targets, groups, where): X an array or {name: array},
    targets an array or {name: array}, where the file(s) the targets came from."""
    source = dict(x_col=flags.x_col, signal_cols=flags.signal_cols, label_col=flags.label_col,
                  group_col=flags.group_col, load=flags.load)
    if not isinstance(x, dict) and not isinstance(kinds, dict):
        return read_source(x, y, **source, target_kind=kinds)
    inputs = x if isinstance(x, dict) else {None: x}
    X, groups = {}, None
    for name, path in inputs.items():
        Xm, _, g, _ = read_source(path, None, **source, target_kind=None)
        X[name] = Xm
        groups = g if groups is None else groups
    check_counts(inputs, X)
    first = next(iter(inputs.values()))
    X = X if isinstance(x, dict) else X[None]
    n = named.rows(X)
    if isinstance(kinds, dict):
        if not isinstance(y, dict):
            raise UserError("several targets: give --y NAME=PATH for each")
        targets = {k: _target(y[k], n, first, kind, source) for k, kind in kinds.items()}
        return X, targets, groups, dict(y)
    if kinds is None:
        return X, np.arange(n), groups, first
    if not y and parquet.is_parquet(first):
        y = source["label_col"]                 # the first table's label column, as for one input
    if not y:
        raise UserError(f"{first}: no targets: give --y y.npy")
    return X, _target(y, n, first, kinds, source), groups, y


def _target(y, n, x_path, kind, source):
    """One target's values: a y.npy, or a label column of the parquet input x_path."""
    if parquet.is_parquet(x_path) and parquet.names_a_column(y):
        _, labels, _, _ = read_source(x_path, y, **source, target_kind=kind)
        return labels
    return read_targets(y, n, x_path, kind)


def check_counts(inputs, X):
    """Every input has the same number of windows."""
    counts = {name: len(a) for name, a in X.items()}
    if len(set(counts.values())) > 1:
        text = ", ".join(f"{inputs[k]} has {v}" for k, v in counts.items())
        raise UserError(f"the inputs must cover the same windows: {text}")


def signals(x, fs, shapes):
    """Every input's signal contract (its sidecar, with --fs NAME=HZ) -> {name: spec}; the windows'
    durations, T_m / fs_m, equal within a sample (inputs of band-power frames are not timed)."""
    if not isinstance(fs, dict) and fs is not None:
        raise UserError(f"--fs {fs:g}: several inputs each have their own rate: --fs NAME=HZ for each "
                        f"({','.join(f'{k}=...' for k in x)})")
    fs = fs or {}
    for name in fs:
        if name not in x:
            raise UserError(f"--fs {name}={fs[name]:g}: not an input (the inputs are {', '.join(x)})")
    specs = {}
    for name, path in x.items():
        specs[name] = signalspec.given(path, fs.get(name))
        signalspec.check_shape(specs[name], shapes[name], path)
    timed = {k: s for k, s in specs.items() if not s.get("bandpower")}
    missing = [k for k, s in timed.items() if not s.get("fs")]
    if missing:
        raise UserError(f"{x[missing[0]]}: its sampling rate is unknown; several inputs need each one's "
                        f"(--fs {missing[0]}=HZ, or {signalspec.sidecar(x[missing[0]])})")
    seconds = {k: shapes[k][-1] / s["fs"] for k, s in timed.items()}
    if seconds:
        tolerance = max(1 / s["fs"] for s in timed.values())
        low, high = min(seconds, key=seconds.get), max(seconds, key=seconds.get)
        if seconds[high] - seconds[low] > tolerance + 1e-9:
            raise UserError(f"the inputs' windows differ in duration: {x[low]} {shapes[low][-1]} frames at "
                            f"{timed[low]['fs']:g} Hz = {seconds[low]:g} s, {x[high]} {shapes[high][-1]} at "
                            f"{timed[high]['fs']:g} Hz = {seconds[high]:g} s")
    return specs


def check_like(x, X, shapes, where):
    """--x-val / --x-test inputs against the training inputs: the same names and (C, F) each."""
    if isinstance(x, dict) != isinstance(shapes, dict) or (isinstance(x, dict) and set(x) != set(shapes)):
        names = ", ".join(shapes) if isinstance(shapes, dict) else "one unnamed --x"
        raise UserError(f"{where}: give the same inputs as --x ({names})")
    for name in (x if isinstance(x, dict) else [None]):
        a = X[name] if name is not None else X
        s = shapes[name] if name is not None else shapes
        if a.shape[1:3] != tuple(s[1:3]):
            path = x[name] if name is not None else x
            raise UserError(f"{path}: windows are (C, F) = {tuple(a.shape[1:3])}, the training data's are "
                            f"{tuple(s[1:3])}")
