"""Benchmark: what a sweep trial costs beyond its epochs, and what --jobs 2 buys on this machine.

    python bench/bench_sweep.py                  # about 3 minutes on 2 CPU cores
    python bench/bench_sweep.py --points 2 --epochs 2 --repeat 1   # smaller, for a smoke run

Prints a markdown table:
  1. per-trial overhead: launch of train.py to its first epoch line (interpreter, torch import,
     data, model) against the time of one epoch, measured from the time stamps of its output lines;
  2. sweep.py --jobs 1 with warm starts (the default: trials forked from a process that imported
     torch once) and with --no-warm-start: its wall time; per trial, the trial's wall time minus
     its epochs' training seconds (start-up, validation, checkpoints); once per sweep, its wall
     minus its trials' (sweep.py's own start, the warm process's imports, scheduling);
  3. the wall-time speed-up of --jobs 2 over --jobs 1 on the same grid (each trial gets
     OMP_NUM_THREADS = cores // jobs).
Not a test: nothing here asserts a speed.
"""
import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = ["--frame-embed", "32", "--layers", "1", "--heads", "2", "--batch", "32"]
# The sweep chooses each trial's threads (cores // jobs); a limit in our own environment would cap it.
ENV = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def make_windows(n, c=3, f=1, t=64, k=3, seed=0):
    """(X (n, c, f, t) float32, y (n,)): class k adds a sinusoid to channel k % c, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(0, 0.8, size=(n, c, f, t)).astype(np.float32)
    for cls in range(k):
        X[y == cls, cls % c] += 1.5 * np.sin(2 * np.pi * (cls + 1) * np.arange(t) / t * 2).astype(np.float32)
    return X, y.astype(np.int64)


def time_one_trial(data, work, epochs, name):
    """Run train.py alone; returns (launch -> first epoch line, mean seconds between epoch lines, total)."""
    env = dict(ENV, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--x", data["x"], "--y", data["y"], *MODEL,
           "--epochs", str(epochs), "--save", os.path.join(work, "one.pt"), "--run-dir", os.path.join(work, name)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    stamps = [time.perf_counter() - start for line in proc.stdout if line.startswith("[epoch ")]
    assert proc.wait() == 0, "train.py failed"
    total = time.perf_counter() - start
    return stamps[0], float(np.mean(np.diff(stamps))), total


def time_sweep(data, work, grid, epochs, jobs, name, warm=True):
    """Run sweep.py on the grid; returns (wall seconds, sum of the trials' wall seconds, sum of
    their epochs' training seconds)."""
    out = os.path.join(work, name)
    cmd = [sys.executable, os.path.join(ROOT, "sweep.py"), "--grid", grid, "--out", out, "--jobs", str(jobs),
           *([] if warm else ["--no-warm-start"]),
           "--", "--x", data["x"], "--y", data["y"], *MODEL, "--epochs", str(epochs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(os.path.join(out, "trials.csv"), newline="") as f:
        trial_walls = [float(row["wall_s"]) for row in csv.DictReader(f)]
    epoch_seconds = 0.0
    for trial in os.listdir(os.path.join(out, "trials")):
        with open(os.path.join(out, "trials", trial, "run", "metrics.jsonl")) as f:
            epoch_seconds += sum(json.loads(line)["seconds"] for line in f if line.strip())
    return wall, sum(trial_walls), epoch_seconds, len(trial_walls)


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=480, help="windows in the synthetic data set")
    p.add_argument("--points", type=int, default=4, help="grid points (lr x drop), 2 or 4")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest is shown")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as work:
        X, y = make_windows(args.windows)
        data = {"x": os.path.join(work, "X.npy"), "y": os.path.join(work, "y.npy")}
        np.save(data["x"], X)
        np.save(data["y"], y)
        grid = os.path.join(work, "grid.json")
        with open(grid, "w") as f:
            json.dump({"lr": [3e-3, 1e-3], "drop": [0.0, 0.1][:max(1, args.points // 2)]}, f)
        n_trials = 2 * max(1, args.points // 2)

        # alternate the runs and keep each one's fastest: robust to other work on a shared machine
        singles, sweeps1, cold1, sweeps2 = [], [], [], []
        for r in range(args.repeat):
            singles.append(time_one_trial(data, work, args.epochs, f"one{r}"))
            sweeps1.append(time_sweep(data, work, grid, args.epochs, 1, f"jobs1-{r}"))
            cold1.append(time_sweep(data, work, grid, args.epochs, 1, f"cold1-{r}", warm=False))
            sweeps2.append(time_sweep(data, work, grid, args.epochs, 2, f"jobs2-{r}"))
        first, epoch, total = min(singles, key=lambda m: m[2])
        warm1, coldj1 = min(sweeps1), min(cold1)
        wall1 = warm1[0]
        wall2 = min(sweeps2)[0]

    import torch
    print(f"\n{n_trials} trials of {args.epochs} epochs on {args.windows} windows {X.shape[1:]}, "
          f"fastest of {args.repeat} runs each | "
          f"{cores}-core CPU ({platform.machine()}), torch {torch.__version__}, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    startup = first - epoch
    print("| measure | seconds | ratio |")
    print("|---|---:|---:|")
    print(f"| train.py launch -> first epoch line | {first:.2f} | |")
    print(f"| one epoch (between epoch lines) | {epoch:.2f} | 1 |")
    print(f"| per-trial overhead (start-up: first line minus one epoch) | {startup:.2f} | "
          f"{startup / epoch:.1f}x one epoch |")
    print(f"| one trial, launch to exit | {total:.2f} | {startup / total:.0%} of it start-up |")
    for label, (wall, trial_walls, epochs, n) in (("warm starts (default)", warm1), ("--no-warm-start", coldj1)):
        per_trial = (trial_walls - epochs) / n
        print(f"| sweep --jobs 1, {label}: wall | {wall:.2f} | |")
        print(f"| ... per trial: its wall (start to exit) minus its epochs' training seconds | {per_trial:.2f} | "
              f"{per_trial / epoch:.1f}x one epoch |")
        print(f"| ... once per sweep: sweep wall minus its trials' walls | {wall - trial_walls:.2f} | |")
    print(f"| sweep --jobs 2 wall | {wall2:.2f} | {wall1 / wall2:.2f}x speed-up over --jobs 1 |")

if __name__ == "__main__":
    main()
