"""Data: windows X (N, C, F, T) and their targets, from .npy or parquet, read, checked and split,
in numpy (no torch here: the batches a run serves are biosig/training/batches.py).

  npy.py      X.npy / y.npy / groups.npy headers, dtypes, shapes, NaN checks (never unpickled)
  parquet.py  parquet windows <-> (N, C, F, T) on Arrow buffers (parquet_columns.py: one column's checks)
  sources.py  one source (X.npy + y.npy, or a table) -> X, targets, groups
  splits.py   random / stratified / group validation splits, cross-validation folds
  ledger.py   which groups a checkpoint trained and validated on
  convert.py  .npy windows <-> a parquet table
  flags.py    the parquet column flags (--x-col, --signal-cols, ...) train.py, infer.py and convert share
  examples.py synthetic data sets that are not one task's example_data (subjects, EDF recordings,
              the wearable PPG + accelerometer set)
  memory.py   how much memory this process may still use (--load auto)

May import: leaves, signals.
"""
from .npy import load_groups, load_windows, open_npy, read_npy_header, read_targets
from .sources import read_source
from .splits import fold_split, kfold_indices, split_indices

__all__ = ["kfold_indices", "load_groups", "load_windows", "open_npy", "read_npy_header", "read_targets", "read_source", "split_indices",
           "fold_split"]
