"""Benchmark: train.py in 1 process against torchrun with 2 processes (gloo, CPU), same data,
same global batch, same number of steps. Prints training samples/s side by side.

    python bench/bench_ddp.py            # about 2 minutes on 2 CPU cores

Each side gets all the machine's cores: 1 process with OMP_NUM_THREADS=cores, K processes
with cores // K threads each. Not a test: nothing here asserts a speed.
"""
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(nproc, tmp, args, tag):
    cores = os.cpu_count()
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // nproc)))
    launch = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--nproc_per_node={nproc}"]
    run_dir = os.path.join(tmp, f"{tag}-{nproc}")
    cmd = [*launch, os.path.join(ROOT, "train.py"), *args, "--save", os.path.join(tmp, f"{tag}-{nproc}.pt"),
           "--run-dir", run_dir]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return json.load(open(os.path.join(run_dir, "summary.json")))


def main():
    import torch
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}\n")
    print("| X (N, C, F, T) | model | global batch | 1 process samples/s | 2 processes samples/s | 2 / 1 |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for (n, c, f, t), embed, batch in (((4096, 8, 1, 256), 32, 64), ((4096, 16, 8, 64), 128, 128)):
            X = rng.normal(size=(n, c, f, t)).astype(np.float32)
            np.save(os.path.join(tmp, "X.npy"), X)
            np.save(os.path.join(tmp, "y.npy"), rng.integers(0, 4, n))
            args = ["--x", os.path.join(tmp, "X.npy"), "--y", os.path.join(tmp, "y.npy"), "--epochs", "2",
                    "--frame-embed", str(embed), "--batch", str(batch), "--limit-train-batches", "24",
                    "--val-split", "0.05"]
            one, two = run(1, tmp, args, f"{c}x{f}x{t}"), run(2, tmp, args, f"{c}x{f}x{t}")
            a, b = one["train_samples_per_s"], two["train_samples_per_s"]
            print(f"| {(n, c, f, t)} | frame-embed {embed} | {batch} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
