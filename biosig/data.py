"""Reading windows from disk, checking them, splitting them, and serving batches.

X is a .npy array of shape (N, C, F, T); y is (N,) integer labels. X is opened
memory-mapped, so a file larger than the memory a run may use still trains: each batch is
one vectorised read of its rows. Small files are read into RAM when that fits.
"""
import os

import numpy as np
import torch

from . import parquet
from .errors import UserError

NPY_MAGIC = b"\x93NUMPY"


def read_npy_header(path, what):
    """Check that `path` is a complete, non-object .npy file; return (shape, dtype, fortran).

    Every problem a user can cause (missing, unreadable, not .npy, truncated, object dtype)
    becomes a UserError naming the file.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: {what} is a directory, expected a .npy file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read {what} file ({e.strerror})") from None
    with f:
        if f.read(6) != NPY_MAGIC:
            raise UserError(f"{path}: not a .npy file")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header(f)
        except (ValueError, OSError, SyntaxError) as e:
            raise UserError(f"{path}: corrupt .npy header ({e})") from None
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
    if dtype.hasobject:
        raise UserError(f"{path}: {what} has object dtype; biosig never unpickles data, save a numeric array")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise UserError(f"{path}: truncated .npy file ({size} bytes, header promises {expected})")
    return tuple(shape), dtype, fortran


def open_npy(path, what, mmap=True):
    """Open a validated .npy file, memory-mapped (read-only) or loaded whole."""
    read_npy_header(path, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: cannot load {what} ({e})") from None


def available_memory():
    """Bytes this process may still use: the tightest of MemAvailable, the cgroup limit (a
    container's, a SLURM job's) and the data/address-space rlimits (ulimit -d / -v)."""
    limits = []
    try:
        import resource
        status = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmData", "VmSize"):
                    status[key] = int(value.split()[0]) * 1024
        for which, used in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
            soft = resource.getrlimit(which)[0]
            if soft != resource.RLIM_INFINITY and used in status:
                limits.append(max(soft - status[used], 0))
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:  # cgroup v2 or v1: the limit of the group this process runs in (container, SLURM job)
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, rel = line.strip().split(":", 2)
                if controllers == "":
                    candidates = [(f"/sys/fs/cgroup{rel}/memory.max", f"/sys/fs/cgroup{rel}/memory.current")]
                elif "memory" in controllers.split(","):
                    base = f"/sys/fs/cgroup/memory{rel}"
                    candidates = [(f"{base}/memory.limit_in_bytes", f"{base}/memory.usage_in_bytes")]
                else:
                    continue
                for limit_file, usage_file in candidates:
                    try:
                        limit = open(limit_file).read().strip()
                        usage = int(open(usage_file).read().strip())
                    except OSError:
                        continue
                    if limit.isdigit() and int(limit) < 1 << 60:
                        limits.append(max(int(limit) - usage, 0))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else 1 << 62


def load_windows(path, load="auto", ndims=(4,)):
    """Open X of shape (N, C, F, T) (or (C, F, T) when 3 is in `ndims`) and validate it.

    load: 'mmap' keeps it on disk, 'ram' reads it whole, 'auto' reads it whole only when it
    takes under a quarter of the memory still available. Returns a float array (maybe memmap).
    """
    shape, dtype, _ = read_npy_header(path, "X")
    if len(shape) not in ndims:
        want = " or ".join({4: "4-D (N, C, F, T)", 3: "3-D (C, F, T)"}[d] for d in sorted(ndims, reverse=True))
        raise UserError(f"{path}: expected {want}, got shape {shape}")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise UserError(f"{path}: X must be numeric (float32 preferred), got dtype {dtype}")
    if min(shape) == 0:
        raise UserError(f"{path}: X is empty, shape {shape}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    free = available_memory()
    if load == "ram" and nbytes > free:
        raise UserError(f"{path}: {nbytes / 2**20:.0f} MiB does not fit in the {free / 2**20:.0f} MiB this process "
                        f"may still use; use --load mmap (or auto) to read it batch by batch")
    in_ram = load == "ram" or (load == "auto" and nbytes < free // 4)
    X = open_npy(path, "X", mmap=not in_ram)
    check_finite(X, path)
    return X


def check_finite(X, path, chunk_bytes=64 << 20):
    """Raise if X holds NaN or Inf, scanning in chunks so a memmap is never read whole."""
    if np.issubdtype(X.dtype, np.integer):
        return
    rows = max(1, chunk_bytes // max(1, X[0].nbytes))
    for start in range(0, len(X), rows):
        block = np.asarray(X[start:start + rows])
        if not np.isfinite(block).all():
            bad = start + int(np.argwhere(~np.isfinite(block).reshape(len(block), -1).all(axis=1))[0, 0])
            raise UserError(f"{path}: X holds NaN or Inf (first in window {bad})")


def read_source(x, y=None, *, x_col="x", signal_cols=None, label_col="label", group_col=None, load="auto",
                ndims=(4,), need_labels=True):
    """One data source -> (X (N, C, F, T), labels (N,) int64 or None, groups or None, where).

    x is an X.npy (a single (C, F, T) window becomes N=1 when 3 is in `ndims`), or a parquet
    file/directory of windows. y is a y.npy, or with parquet the label column (default
    `label_col`). Labels are checked for shape and dtype here, for range by check_labels;
    `where` names them in errors."""
    if parquet.is_parquet(x):
        label_col = None if y and not parquet.names_a_column(y) else (y or label_col)
        X, labels, groups = parquet.read_windows_table(
            x, x_col=x_col, signal_cols=parquet.parse_columns(signal_cols), label_col=label_col,
            group_col=group_col, need_labels=need_labels and label_col is not None)
        where = f"{x} column '{label_col}'"
    else:
        if group_col:
            raise UserError(f"{x}: --group-col names a parquet column; for .npy data use --groups groups.npy")
        X, labels, groups, where = load_windows(x, load, ndims), None, None, y
        if X.ndim == 3:
            X = X[None]
    if y and not parquet.names_a_column(y):
        labels, where = read_labels(y, len(X), x), y
    elif labels is None and need_labels:
        raise UserError(f"{x}: no labels: give --y y.npy" + (" or the label column" if parquet.is_parquet(x) else ""))
    return X, labels, groups, where


def read_labels(path, n_windows, x_path):
    """y.npy -> (N,) int64, checked for shape and integer dtype (not yet for range)."""
    shape, dtype, _ = read_npy_header(path, "y")
    if len(shape) != 1:
        raise UserError(f"{path}: expected 1-D labels (N,), got shape {shape}")
    if shape[0] != n_windows:
        raise UserError(f"{path}: {shape[0]} labels but {x_path} has {n_windows} windows")
    if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_ or np.issubdtype(dtype, np.floating)):
        raise UserError(f"{path}: labels must be integers, got dtype {dtype}")
    y = np.asarray(open_npy(path, "y", mmap=False))
    if np.issubdtype(dtype, np.floating):   # whole numbers stored as floats (MATLAB, pandas) are fine, as in parquet
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise UserError(f"{path}: label {y[bad]} at window {bad}; labels must be integers, got dtype {dtype}")
    return y.astype(np.int64)


def check_labels(y, where, n_classes=None, min_classes=2, source=None):
    """Labels must be in [0, K-1] (K = `n_classes`, or max + 1) with at least `min_classes`
    distinct values. Returns (y, K); `where` names the file (and column) in errors, `source`
    where K came from (default "--classes K")."""
    if y.min() < 0:
        raise UserError(f"{where}: negative label {int(y.min())}; labels must be in [0, K-1]")
    seen = int(y.max()) + 1
    if n_classes is None:
        n_classes = seen
    elif seen > n_classes:
        raise UserError(f"{where}: label {seen - 1} is outside [0, {n_classes - 1}] for {source or f'--classes {n_classes}'}")
    if len(np.unique(y)) < min_classes:
        raise UserError(f"{where}: only one class ({int(y[0])}) present; need at least two to train a classifier")
    return y, n_classes


def empty_classes(label_sets, n_classes):
    """Classes in [0, K-1] that no window of any of `label_sets` has, and a one-line guess at
    why (1-based labels, a typo), for the phantom-class check."""
    counts = sum(np.bincount(y, minlength=n_classes) for y in label_sets)
    empty = [k for k in range(n_classes) if counts[k] == 0]
    if not empty:
        return [], ""
    if empty == [0]:
        why = f"labels 1..{n_classes - 1} look 1-based (as MATLAB exports): subtract 1"
    else:
        top = n_classes - 1
        why = (f"label {top} ({int(counts[top])} window{'s' if counts[top] != 1 else ''}) lies beyond the gap: "
               f"a typo, or classes numbered with gaps: renumber them 0..K-1")
    return empty, why


def load_groups(path, n_windows):
    """groups.npy (N,): one id (int or string) per window."""
    shape, _, _ = read_npy_header(path, "groups")
    if shape != (n_windows,):
        raise UserError(f"{path}: expected one group id per window, shape ({n_windows},), got {shape}")
    return np.asarray(open_npy(path, "groups", mmap=False))


def channel_stats(X, indices, chunk_bytes=64 << 20):
    """Mean and std (C, F) of X's windows `indices` over windows and frames, in float64,
    reading in chunks (a memmap is never read whole). For --standardize: training split only."""
    indices = np.sort(np.asarray(indices))
    c, f = X.shape[1], X.shape[2]
    total, total_sq, count = np.zeros((c, f)), np.zeros((c, f)), 0
    rows = max(1, chunk_bytes // max(1, X[0].nbytes))
    for start in range(0, len(indices), rows):
        block = np.asarray(X[indices[start:start + rows]], dtype=np.float64)
        total += block.sum(axis=(0, 3))
        total_sq += (block * block).sum(axis=(0, 3))
        count += block.shape[0] * block.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean, std


def split_indices(y, val_split, seed, method="stratified", groups=None, where="y"):
    """Split window indices into (train, val), both sorted.

    random: a seeded permutation. stratified: the same fraction of every class goes to
    validation. group: whole groups (e.g. subjects) go to one side, so no group is on both.
    """
    n = len(y)
    if not 0.0 < val_split < 1.0:
        raise UserError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
    rng = np.random.default_rng(seed)
    if method == "random":
        perm = rng.permutation(n)
        n_val = int(round(n * val_split))
        val = perm[:n_val]
    elif method == "stratified":
        val = []
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            k = int(round(len(members) * val_split))
            val.append(members[:min(k, len(members) - 1)])  # keep at least one for training
        val = np.concatenate(val)
    elif method == "group":
        if groups is None:
            raise UserError("--split group needs --groups (one group id per window)")
        uniq = rng.permutation(np.unique(groups))
        n_val_groups = int(round(len(uniq) * val_split))
        if len(uniq) < 2 or n_val_groups in (0, len(uniq)):
            raise UserError(f"{where}: {len(uniq)} group(s) cannot be split {1 - val_split:.0%}/{val_split:.0%}; need more groups")
        val = np.flatnonzero(np.isin(groups, uniq[:n_val_groups]))
    else:
        raise ValueError(method)
    is_val = np.zeros(n, bool)
    is_val[val] = True
    train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(val) == 0 or len(train) == 0:
        raise UserError(f"{where}: {n} windows are too few for --val-split {val_split} "
                        f"({len(train)} train / {len(val)} val); add data or change --val-split")
    return train, val


class Windows:
    """Rows of X (maybe memory-mapped) and their labels, served as batches.

    A batch is one sorted fancy-index read `X[idx]`, far cheaper than N per-sample reads
    through a Dataset and collate. With workers > 0, batches are read in worker processes
    that open the memmap themselves (a memmap must not be pickled: it would copy the file).
    """

    def __init__(self, X, y, indices):
        self.X, self.y, self.indices = X, y, np.asarray(indices)
        self.path = X.filename if isinstance(X, np.memmap) else None

    def __len__(self):
        return len(self.indices)

    def read(self, positions):
        """Windows at `positions` (into self.indices) -> (x (B, C, F, T) float32, y (B,))."""
        rows = np.sort(self.indices[positions])
        x = np.ascontiguousarray(self.X[rows], dtype=np.float32)
        y = self.y[rows] if self.y is not None else np.zeros(len(rows), np.int64)
        return torch.from_numpy(x), torch.from_numpy(np.asarray(y))

    def __getstate__(self):  # sent to DataLoader workers: reopen the memmap there
        state = dict(self.__dict__)
        if self.path is not None:
            state["X"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.X is None:
            self.X = np.load(self.path, mmap_mode="r", allow_pickle=False)


class _BatchReads(torch.utils.data.Dataset):
    def __init__(self, windows, batches):
        self.windows, self.batches = windows, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.windows.read(self.batches[i])


def iterate_batches(windows, batches, workers=0):
    """Yield (x, y) for each list of positions in `batches`, in order."""
    if workers <= 0:
        for b in batches:
            yield windows.read(b)
        return
    # its own generator: a DataLoader otherwise draws its worker seed from the global torch RNG,
    # and dropout would then differ from a run without workers (and from an exact resume)
    loader = torch.utils.data.DataLoader(_BatchReads(windows, batches), batch_size=None, shuffle=False,
                                         num_workers=workers, persistent_workers=False, prefetch_factor=4,
                                         generator=torch.Generator().manual_seed(0))
    yield from loader


def epoch_batches(n, batch, seed, epoch, shuffle, rank=0, world=1):
    """This rank's share of each global batch for one epoch: a list of position arrays.

    The global order is a permutation seeded by (seed, epoch), the same on every rank, cut
    into global batches of `batch`; rank r takes every world-th element of each. So K
    processes see exactly the batches one process would, split between them. A trailing
    global batch smaller than `world` is dropped so every rank takes the same number of steps.
    Returns (local_batches, global_sizes).
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(n, generator=g).numpy()
    else:
        order = np.arange(n)
    local, sizes = [], []
    for start in range(0, n, batch):
        chunk = order[start:start + batch]
        if len(chunk) < world:
            break
        local.append(chunk[rank::world])
        sizes.append(len(chunk))
    return local, sizes


def shard_range(n, rank, world):
    """Contiguous [start, stop) of n items for this rank: every item on exactly one rank."""
    per, extra = divmod(n, world)
    start = rank * per + min(rank, extra)
    return start, start + per + (1 if rank < extra else 0)
