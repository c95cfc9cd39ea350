"""Benchmark: biosig's training/inference path against the plain approach, same data and model.

    python bench/bench_train.py                  # about 3 minutes on 2 CPU cores
    python bench/bench_train.py --quick          # smaller, for a smoke run

Prints markdown tables with ratios (ours / plain):
  1. training samples/s — train.py's loop (one sorted vectorised read per batch) against the
     EEG2Arm guide's per-sample Dataset + DataLoader, X in RAM and X memory-mapped;
  2. inference samples/s — biosig's batched Predictor against one window at a time;
  3. peak memory training from an X.npy larger than the memory the run may use, under a
     cgroup limit (../shared/tools/memlimit or $BIOSIG_MEMLIMIT): train.py (memory-mapped)
     against the plain np.load-then-train approach.
Not a test: nothing here asserts a speed.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from biosig import loop, preprocess  # noqa: E402
from biosig.data import Windows, epoch_batches  # noqa: E402
from biosig.distributed import Context  # noqa: E402
from biosig.inference import Predictor  # noqa: E402
from biosig.models import build_model  # noqa: E402
from biosig.tasks import Classification  # noqa: E402


def model_for(shape, k, embed, layers=2, heads=4):
    torch.manual_seed(0)
    return build_model({"name": "eeg2arm", "n_elec": shape[1], "n_bands": shape[2], "n_outputs": k,
                        "frame_embed": embed, "n_layers": layers, "n_heads": heads, "drop": 0.1})


def ours_train(X, y, embed, batch, steps):
    """biosig.loop.train_one_epoch over Windows (what train.py runs). Returns samples/s."""
    model = model_for(X.shape, int(y.max()) + 1, embed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    windows = Windows(X, y, np.arange(len(X)))
    batches, sizes = epoch_batches(len(X), batch, seed=0, epoch=1, shuffle=True)
    batches, sizes = batches[:steps], sizes[:steps]
    stats = loop.train_one_epoch(model, Classification(int(y.max()) + 1), windows, batches, sizes, opt, None,
                                 device=torch.device("cpu"), amp="off", preprocess_spec=preprocess.make_spec(),
                                 clip=1.0, accum=1, ctx=Context())
    return stats["samples"] / stats["seconds"]


class PerSample(torch.utils.data.Dataset):
    """The guide's approach: one window per __getitem__, collated by the DataLoader."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.X[i], dtype=np.float32)), int(self.y[i])


def plain_train(X, y, embed, batch, steps):
    model = model_for(X.shape, int(y.max()) + 1, embed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(PerSample(X, y), batch_size=batch, shuffle=True, num_workers=0)
    model.train()
    start, seen = time.perf_counter(), 0
    for i, (xb, yb) in enumerate(loader):
        if i == steps:
            break
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += len(yb)
    return seen / (time.perf_counter() - start)


def inference(X, y, embed, batch):
    model = model_for(X.shape, int(y.max()) + 1, embed).eval()
    ckpt = {"model_state": model.state_dict(), "config": model.config, "task": Classification(4).config,
            "preprocess": preprocess.make_spec()}
    pred = Predictor(ckpt)
    t = time.perf_counter()
    for s in range(0, len(X), batch):
        pred.predict(np.asarray(X[s:s + batch]), batch=batch)
    ours = len(X) / (time.perf_counter() - t)
    n = min(len(X), 256)
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(n):       # the guide's infer loop: one window per forward pass
            model(torch.from_numpy(np.asarray(X[i:i + 1], dtype=np.float32)))
    plain = n / (time.perf_counter() - t)
    return ours, plain


PLAIN_CHILD = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[3])
from bench.bench_train import PerSample, model_for, peak_mib, watch_anon_memory
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
from bench.bench_train import peak_mib, watch_anon_memory
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit", default="1G", help="memory limit for the bigger-than-memory case")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    n, steps = (1024, 8) if args.quick else (4096, 40)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"python {platform.python_version()}\n")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        print("| case | X (N, C, F, T) | model | ours samples/s | plain samples/s | ours / plain |")
        print("|---|---|---|---|---|---|")
        for shape, embed, where in (((n, 8, 1, 256), 32, "ram"), ((n, 8, 1, 256), 32, "mmap"),
                                    ((n, 16, 8, 64), 256, "ram"), ((n, 16, 8, 64), 256, "mmap"),
                                    ((n, 64, 1, 64), 16, "mmap")):
            X = rng.normal(size=shape).astype(np.float32)
            y = rng.integers(0, 4, shape[0])
            if where == "mmap":
                path = os.path.join(tmp, f"X{shape[1]}.npy")
                np.save(path, X)
                X = np.load(path, mmap_mode="r")
            plain_train(X, y, embed, 64, 2), ours_train(X, y, embed, 64, 2)       # warm-up
            runs = [(ours_train(X, y, embed, 64, steps), plain_train(X, y, embed, 64, steps)) for _ in range(3)]
            ours, plain = np.median([r[0] for r in runs]), np.median([r[1] for r in runs])   # alternated
            print(f"| train, X in {where} | {shape} | frame-embed {embed} | {ours:,.0f} | {plain:,.0f} | "
                  f"{ours / plain:.2f}x |")
        X = rng.normal(size=(n, 16, 8, 64)).astype(np.float32)
        ours, plain = inference(X, rng.integers(0, 4, n), 256, 256)
        print(f"| inference, batch 256 vs one window at a time | {X.shape} | frame-embed 256 | {ours:,.0f} | "
              f"{plain:,.0f} | {ours / plain:.2f}x |")

        size, rows = memory_case(tmp, args.limit, 6000 if args.quick else 48000)
        print(f"\nTraining from a {size:,.0f} MiB X.npy (N, 32, 1, 256) under a {args.limit} memory limit "
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
