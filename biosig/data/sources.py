"""One data source -- X.npy (+ y.npy) or a parquet table -- as (X, targets, groups)."""
import numpy as np

from ..errors import UserError
from . import parquet
from .npy import check_target_values, load_windows, read_targets


def read_source(x, y=None, *, x_col="x", signal_cols=None, label_col="label", group_col=None, load="auto",
                ndims=(4,), need_labels=True, target_kind="integer"):
    """One data source -> (X (N, C, F, T), targets (N, ...) or None, groups or None, where).

    x is an X.npy (a single (C, F, T) window becomes N=1 when 3 is in `ndims`), or a parquet
    file/directory of windows. y is a y.npy, or with parquet the label column (default
    `label_col`). Targets are checked for length and `target_kind` here ("integer" (N,), "frames"
    (N, T) with X's T, "float" (N,) or (N, D)), for what the task needs by the task; `where`
    names them in errors. target_kind None (a task that learns from X alone): no targets are
    read, and the windows' own indices (N,) stand in for them."""
    if target_kind is None:
        need_labels, y, label_col = False, None, None
    if parquet.is_parquet(x):
        label_col = None if y and not parquet.names_a_column(y) else (y or label_col)
        X, labels, groups = parquet.read_windows_table(
            x, x_col=x_col, signal_cols=parquet.parse_columns(signal_cols), label_col=label_col,
            group_col=group_col, need_labels=need_labels and label_col is not None,
            label_kind="integer" if target_kind == "integer" else "any")
        where = f"{x} column '{label_col}'"
        if labels is not None and target_kind != "integer":
            labels = check_target_values(labels, target_kind, where)
    else:
        if group_col:
            raise UserError(f"{x}: --group-col names a parquet column; for .npy data use --groups groups.npy")
        X, labels, groups, where = load_windows(x, load, ndims), None, None, y
        if X.ndim == 3:
            X = X[None]
    # with .npy windows a --y is always a file (a directory or a missing file is named as such)
    if y and not (parquet.names_a_column(y) and parquet.is_parquet(x)):
        labels, where = read_targets(y, len(X), x, target_kind), y
    elif labels is None and need_labels:
        raise UserError(f"{x}: no labels: give --y y.npy" + (" or the label column" if parquet.is_parquet(x) else ""))
    if target_kind is None:
        labels, where = np.arange(len(X)), x
    elif labels is not None and target_kind == "frames" and labels.shape[1:] != X.shape[-1:]:
        raise UserError(f"{where}: expected one label per frame, shape (N, T) = ({len(X)}, {X.shape[-1]}), got "
                        f"{tuple(labels.shape)}")
    return X, labels, groups, where
