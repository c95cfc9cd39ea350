"""Benchmark: training from an X.npy larger than the memory the run may use.

    python bench/bench_memory.py                 # about 1 minute on 2 CPU cores
    python bench/bench_memory.py --quick         # smaller, for a smoke run

Under a cgroup limit (../shared/tools/memlimit or $BIOSIG_MEMLIMIT), train.py (memory-mapped)
against the plain np.load-then-train approach with the guide's per-sample Dataset; prints exit
status, peak anonymous memory and seconds of each. Not a test: nothing here asserts.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from biosig.models import build_model  # noqa: E402


def model_for(shape, k, embed, layers=2, heads=4):
    torch.manual_seed(0)
    return build_model({"name": "eeg2arm", "n_elec": shape[1], "n_bands": shape[2], "n_outputs": k,
                        "frame_embed": embed, "n_layers": layers, "n_heads": heads, "drop": 0.1})


PLAIN_CHILD = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[3])
from bench.bench_memory import model_for, peak_mib, watch_anon_memory
from bench.bench_train import PerSample          # the guide's per-sample Dataset
watch_anon_memory()
X = np.load(sys.argv[1]); y = np.load(sys.argv[2])        # the plain approach: whole array in RAM
model = model_for(X.shape, 2, 16, layers=1, heads=2); opt = torch.optim.AdamW(model.parameters())
loader = torch.utils.data.DataLoader(PerSample(X, y), batch_size=32, shuffle=True)
for i, (xb, yb) in enumerate(loader):
    if i == 8: break
    loss = torch.nn.functional.cross_entropy(model(xb), yb); opt.zero_grad(); loss.backward(); opt.step()
print("PEAK", peak_mib())
"""

OURS_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[-1])
import train
from bench.bench_memory import peak_mib, watch_anon_memory
watch_anon_memory()
train.main(sys.argv[1:-1])
print("PEAK", peak_mib())
"""


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


_peak_anon = [0]


def watch_anon_memory(interval=0.01):
    """Sample this process's anonymous resident memory (RssAnon: its own allocations, not the
    file pages a memmap maps, which the kernel can drop) in a background thread."""
    import threading

    def sample():
        while True:
            _peak_anon[0] = max(_peak_anon[0], _status_kib("RssAnon"))
            time.sleep(interval)
    threading.Thread(target=sample, daemon=True).start()


def peak_mib():
    """Peak anonymous memory seen by watch_anon_memory, MiB."""
    return max(_peak_anon[0], _status_kib("RssAnon")) / 1024


def memory_case(workdir, limit, n):
    """Train from an X.npy bigger than `limit` under that cgroup limit: ours vs plain."""
    from numpy.lib.format import open_memmap
    tool = os.environ.get("BIOSIG_MEMLIMIT") or os.path.join(ROOT, "..", "shared", "tools", "memlimit")
    xp, yp = os.path.join(workdir, "X_big.npy"), os.path.join(workdir, "y_big.npy")
    X = open_memmap(xp, "w+", np.float32, (n, 32, 1, 256))
    rng = np.random.default_rng(0)
    for s in range(0, n, 2000):
        X[s:s + 2000] = rng.normal(size=(min(2000, n - s), 32, 1, 256)).astype(np.float32)
    X.flush()
    size_mib = X.nbytes / 2 ** 20
    del X
    np.save(yp, np.arange(n) % 2)
    env = dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count()))
    ours = [sys.executable, "-c", OURS_CHILD, "--x", xp, "--y", yp, "--save", os.path.join(workdir, "big.pt"),
            "--run-dir", os.path.join(workdir, f"run-{time.time_ns()}"), "--epochs", "1",
            "--limit-train-batches", "8", "--val-split", "0.01", "--frame-embed", "16", "--layers", "1",
            "--heads", "2", "--batch", "32", ROOT]
    plain = [sys.executable, "-c", PLAIN_CHILD, xp, yp, ROOT]
    rows = []
    for name, cmd in (("train.py (memory-mapped)", ours), ("plain: np.load + Dataset", plain)):
        full = [tool, limit, "--", *cmd] if os.access(tool, os.X_OK) else cmd
        t = time.perf_counter()
        p = subprocess.run(full, capture_output=True, text=True, env=env)
        if p.returncode == 3 and full[0] == tool:
            return size_mib, None
        peak = next((float(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("PEAK")), None)
        rows.append((name, p.returncode, peak, time.perf_counter() - t))
    return size_mib, rows


def main():
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit", default="1G", help="memory limit for the bigger-than-memory case")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        size, rows = memory_case(tmp, args.limit, 6000 if args.quick else 48000)
        print(f"Training from a {size:,.0f} MiB X.npy (N, 32, 1, 256) under a {args.limit} memory limit "
              f"(8 steps of 32, same model; peak anonymous memory, sampled every 10 ms: what the process "
              f"allocated, not the file pages a memmap maps, which the kernel reclaims under the limit):\n")
        if rows is None:
            print("(memlimit cannot make a memory cgroup on this machine: skipped)")
            return
        print("| approach | exit status | peak anonymous MiB | seconds |")
        print("|---|---|---|---|")
        for name, rc, peak, secs in rows:
            status = "ok" if rc == 0 else ("killed (OOM)" if rc in (137, -9) else f"exit {rc}")
            print(f"| {name} | {rc} {status} | {f'{peak:,.0f}' if peak is not None else '—'} | {secs:.1f} |")


if __name__ == "__main__":
    main()
