"""Training from an X.npy larger than the memory the run may use: a container's or SLURM
job's cgroup limit (../shared/tools/memlimit, where this machine can make one) or a data
rlimit (`ulimit -d`, which every Linux machine — CI included — can set)."""
import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
from numpy.lib.format import open_memmap

from conftest import ENV, ROOT, assert_user_error

MEMLIMIT = os.environ.get("BIOSIG_MEMLIMIT") or os.path.join(ROOT, "..", "shared", "tools", "memlimit")
LIMIT = 600 << 20


def limited(how, *args):
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *map(str, args)]
    if how == "cgroup":
        if not os.access(MEMLIMIT, os.X_OK):
            pytest.skip("no memlimit tool (set BIOSIG_MEMLIMIT)")
        return subprocess.run([MEMLIMIT, str(LIMIT), "--", *cmd], capture_output=True, text=True, env=ENV,
                              timeout=300)

    def data_limit():
        resource.setrlimit(resource.RLIMIT_DATA, (LIMIT, LIMIT))
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, preexec_fn=data_limit)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """768 MB of (24000, 32, 1, 250) float32 windows with signal in channel 0, written in chunks
    (short windows: the small model itself needs little memory, the file is what is big)."""
    d = tmp_path_factory.mktemp("big")
    if shutil.disk_usage(d).free < 3 << 30:
        pytest.skip("not enough disk for a 768 MB file")
    n = 24000
    X = open_memmap(d / "X.npy", "w+", np.float32, (n, 32, 1, 250))
    y = np.arange(n) % 2
    rng = np.random.default_rng(0)
    for s in range(0, n, 2000):
        block = rng.normal(size=(2000, 32, 1, 250)).astype(np.float32)
        block[:, 0] += 2.0 * y[s:s + 2000, None, None]
        X[s:s + 2000] = block
    X.flush()
    del X
    np.save(d / "y.npy", y)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["rlimit", "cgroup"])
def test_bigger_than_memory_trains_memory_mapped(big, how):
    common = ["--x", big / "X.npy", "--y", big / "y.npy", "--epochs", "1", "--limit-train-batches", "8",
              "--val-split", "0.01", "--frame-embed", "16", "--layers", "1", "--heads", "2", "--batch", "32"]
    proc = limited(how, *common, "--save", big / f"{how}.pt", "--run-dir", big / how)
    if proc.returncode == 3 and how == "cgroup":
        pytest.skip("memlimit cannot make a memory cgroup on this machine")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (big / f"{how}.pt").exists()
    # forcing the whole file into RAM under the same limit is refused up front, not killed
    proc = limited(how, *common, "--load", "ram", "--save", big / "r.pt", "--run-dir", big / "ram")
    assert_user_error(proc, "X.npy", "does not fit", "--load mmap")
    assert not (big / "r.pt").exists() and not (big / "ram").exists()
