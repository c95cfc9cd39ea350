"""X.npy, y.npy and groups.npy: reading and checking them without ever unpickling.

X is opened memory-mapped, so a file larger than the memory a run may use still trains;
small files are read into RAM when that fits. Every problem a user can cause (missing,
unreadable, not .npy, truncated, object dtype, wrong shape, NaN) is a UserError naming the file.
"""
import os

import numpy as np

from ..errors import UserError
from .memory import available_memory

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
        if not f.seekable():        # a pipe or process substitution (<(cat X.npy)): .npy files are read in place
            raise UserError(f"{path}: {what} is a pipe or stream, not a file; .npy data must be a regular file")
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


def read_targets(path, n_windows, x_path, kind="integer"):
    """y.npy -> (N, ...) targets, checked for length and dtype (the task checks the rest).

    kind "integer": (N,) int64 class labels (whole numbers stored as floats, as MATLAB and
    pandas write them, are fine); "frames": the same per frame, (N, T) int64; "float": (N,) or
    (N, D) float64, all finite."""
    shape, dtype, _ = read_npy_header(path, "y")
    if len(shape) == 0:
        raise UserError(f"{path}: expected one target per window, got a scalar")
    if shape[0] != n_windows:
        raise UserError(f"{path}: {shape[0]} labels but {x_path} has {n_windows} windows")
    if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_ or np.issubdtype(dtype, np.floating)):
        raise UserError(f"{path}: labels must be numbers, got dtype {dtype}")
    return check_target_values(np.asarray(open_npy(path, "y", mmap=False)), kind, path)


def check_target_values(y, kind, where):
    """Targets (N, ...) as read -> the dtype `kind` asks for; values that cannot be that kind
    (0.5 as a class label, NaN as a regression target) are one line naming the window."""
    if kind in ("integer", "frames"):
        if np.issubdtype(y.dtype, np.floating):
            whole = np.isfinite(y) & (y == np.round(y))
            if not whole.all():
                bad = int(np.flatnonzero(~whole.reshape(len(y), -1).all(axis=1))[0])
                raise UserError(f"{where}: label {np.ravel(y[bad])[:4].tolist() if y.ndim > 1 else y[bad]} at window "
                                f"{bad}; labels must be integers, got dtype {y.dtype}"
                                + (" (real-valued targets: --task regression)" if kind == "integer" else ""))
        return y.astype(np.int64)
    if kind == "float":
        y = y.astype(np.float64)
        finite = np.isfinite(y)
        if not finite.all():
            bad = int(np.flatnonzero(~finite.reshape(len(y), -1).all(axis=1))[0])
            raise UserError(f"{where}: target of window {bad} is NaN or Inf; regression targets must be finite")
        return y
    return y


def load_groups(path, n_windows):
    """groups.npy (N,): one id (int or string) per window."""
    shape, _, _ = read_npy_header(path, "groups")
    if shape != (n_windows,):
        raise UserError(f"{path}: expected one group id per window, shape ({n_windows},), got {shape}")
    return np.asarray(open_npy(path, "groups", mmap=False))
