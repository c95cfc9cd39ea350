"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

    with atomic_path("model.pt") as tmp:
        torch.save(obj, tmp)          # write anything to tmp; on success it replaces model.pt

The temporary file sits beside the target (same filesystem, so the rename is atomic) and is
removed on any failure, Ctrl-C included.
"""
import contextlib
import os
import tempfile


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
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
