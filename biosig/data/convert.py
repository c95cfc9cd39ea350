"""Convert windows between .npy arrays and a parquet table (one row per window).

    python -m biosig.convert --x X.npy --y y.npy [--groups g.npy] --out windows.parquet
    python -m biosig.convert --x windows.parquet --out-x X.npy [--out-y y.npy] [--out-groups g.npy]

The direction follows --x: a .parquet/.pq file or a directory of them is read as a table,
anything else as X.npy (N, C, F, T). Everything is read and checked before anything is
written, and each output appears whole (temp file + rename) or not at all.
"""
import os

import numpy as np

from ..signals import contract
from ..atomic import atomic_path
from . import load_windows, open_npy, read_npy_header
from .parquet import is_parquet, parse_columns, read_windows_table, write_windows_table
from ..errors import UserError


def save_npy(path, array):
    """np.save to a temp file next to `path`, then rename: never a half-written .npy."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.save must not add .npy
            np.save(f, array, allow_pickle=False)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def load_ids(path, what, n, x_path):
    """y.npy or groups.npy, one entry per window -> ndarray. Labels are numbers: (n,) class ids
    or regression targets, or (n, D) rows (D targets, or a label per frame); groups are (n,)."""
    shape, dtype, _ = read_npy_header(path, what)
    if what == "labels":
        if len(shape) not in (1, 2) or shape[0] != n:
            raise UserError(f"{path}: expected one {what} entry per window of {x_path}, shape ({n},) or ({n}, D), "
                            f"got {shape}")
        if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_ or np.issubdtype(dtype, np.floating)):
            raise UserError(f"{path}: labels must be numbers, got dtype {dtype}")
        y = np.asarray(open_npy(path, what, mmap=False))
        if not np.isfinite(y).all():
            raise UserError(f"{path}: labels hold NaN or Inf")
        return y
    if shape != (n,):
        raise UserError(f"{path}: expected one {what} entry per window of {x_path}, shape ({n},), got {shape}")
    return np.asarray(open_npy(path, what, mmap=False))


def check_out_dir(path, flag):
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"{path}: {flag} directory {parent} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{path}: {flag} is a directory")


def npy_to_parquet(args):
    for flag in ("out_x", "out_y", "out_groups"):
        if getattr(args, flag):
            raise UserError(f"--{flag.replace('_', '-')} is for reading a parquet table, but --x {args.x} is .npy")
    if not args.out:
        raise UserError("--out windows.parquet is needed to convert X.npy to parquet")
    if not args.out.lower().endswith((".parquet", ".pq")):
        raise UserError(f"{args.out}: --out must end in .parquet or .pq")
    check_out_dir(args.out, "--out")
    X = load_windows(args.x, load="mmap")
    n, c = X.shape[:2]
    y = load_ids(args.y, "labels", n, args.x) if args.y else None
    groups = load_ids(args.groups, "groups", n, args.x) if args.groups else None
    spec = contract.read(args.x)            # X.signal.json: the channels' names go to the columns, the rest beside
    signal_cols = parse_columns(args.signal_cols)
    if spec.get("channels") and args.layout == "channels":
        if signal_cols and signal_cols != spec["channels"]:
            raise UserError(f"--signal-cols {args.signal_cols} contradicts {contract.sidecar(args.x)} "
                            f"({','.join(spec['channels'])})")
        signal_cols = spec["channels"]
    if signal_cols and args.layout != "channels":
        raise UserError("--signal-cols names the channel columns of --layout channels")
    if signal_cols and len(signal_cols) != c:
        raise UserError(f"--signal-cols names {len(signal_cols)} columns but {args.x} has {c} channels")
    write_windows_table(args.out, X, y, groups, x_col=args.x_col, label_col=args.label_col,
                        group_col=args.group_col or "group", layout=args.layout, signal_cols=signal_cols)
    if spec:
        contract.write(args.out, spec)      # windows.signal.json beside windows.parquet, which train.py reads
    return (f"wrote {args.out}: {n} windows of (C, F, T) = {tuple(X.shape[1:])}"
            + (", labels" if y is not None else "") + (", groups" if groups is not None else ""))


def parquet_to_npy(args):
    for flag in ("y", "groups", "out"):
        if getattr(args, flag):
            raise UserError(f"--{flag} is for converting X.npy to parquet, but --x {args.x} is parquet; "
                            f"use --out-x/--out-y/--out-groups")
    if not args.out_x:
        raise UserError("--out-x X.npy is needed to convert parquet to .npy")
    outs = [(p, flag) for p, flag in ((args.out_x, "--out-x"), (args.out_y, "--out-y"),
                                      (args.out_groups, "--out-groups")) if p]
    if len({os.path.abspath(p) for p, _ in outs} | {os.path.abspath(args.x)}) != len(outs) + 1:
        raise UserError("--x, --out-x, --out-y and --out-groups must all be different files")
    for path, flag in outs:
        check_out_dir(path, flag)
    group_col = args.group_col or ("group" if args.out_groups else None)
    X, y, groups = read_windows_table(args.x, x_col=args.x_col, signal_cols=parse_columns(args.signal_cols),
                                      label_col=args.label_col, group_col=group_col, need_labels=bool(args.out_y),
                                      label_kind="any")
    save_npy(args.out_x, X)
    if args.out_y:
        save_npy(args.out_y, y)
    if args.out_groups:
        save_npy(args.out_groups, groups)
    return f"wrote {', '.join(p for p, _ in outs)}: {len(X)} windows of (C, F, T) = {tuple(X.shape[1:])}"


def convert(args):
    """What biosig.convert does with its parsed flags (biosig/cli/convert.py), in the direction
    --x gives -> the line that says what was written."""
    return (parquet_to_npy if is_parquet(args.x) else npy_to_parquet)(args)
