"""Data: windows X (N, C, F, T) and their targets, from .npy or parquet, checked, split and
served as batches.

  npy.py      X.npy / y.npy / groups.npy headers, dtypes, shapes, NaN checks (never unpickled)
  parquet.py  parquet windows <-> (N, C, F, T) on Arrow buffers
  sources.py  one source (X.npy + y.npy, or a table) -> X, targets, groups
  splits.py   random / stratified / group validation splits, cross-validation folds
  batches.py  Windows (DeviceWindows: held in GPU memory), per-epoch shuffled and sharded batches,
              DataLoader workers
  memory.py   how much memory this process may still use (--load auto)
"""
from .batches import DeviceWindows, Windows, epoch_batches, iterate_batches, on_device, shard_range
from .npy import load_groups, load_windows, open_npy, read_npy_header, read_targets
from .sources import read_source
from .splits import fold_split, kfold_indices, split_indices

__all__ = ["DeviceWindows", "Windows", "on_device", "kfold_indices", "epoch_batches", "iterate_batches", "shard_range",
           "load_groups", "load_windows", "open_npy", "read_npy_header", "read_targets", "read_source", "split_indices",
           "fold_split"]
