"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

    with atomic_path("model.pt") as tmp:
        torch.save(obj, tmp)          # write anything to tmp; on success it replaces model.pt

The temporary file sits beside the target (same filesystem, so the rename is atomic) and is
removed on any failure, Ctrl-C included.
"""
import contextlib
import json
import os
import tempfile


def can_create_files(directory):
    """True if a file can really be created in `directory` (os.access says yes to root on a
    read-only filesystem or /proc; trying is the only honest check)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".biosig-probe-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


@contextlib.contextmanager
def atomic_path(path, fsync=False):
    """Yield a temporary path beside `path`; rename it over `path` when the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; others on a shared disk may read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, obj):
    """Write JSON atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")


def write_npz(path, arrays):
    """Write {name: array} as .npz atomically (read back with allow_pickle=False)."""
    import numpy as np
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
