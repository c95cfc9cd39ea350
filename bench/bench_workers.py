"""Benchmark: what a shared study costs a trial. The same Optuna search (--trials T, one job, short
trials) runs as a local sweep (OUT/optuna.db, this sweep alone) and as one worker of a shared study
(--storage journal:FILE, and --storage postgresql://... on a throw-away local server), alternately,
--repeat times; then W workers side by side on the journal and on PostgreSQL against one local
sweep with --jobs W. Prints a markdown table of seconds per finished trial (the sweep's wall / T),
the ratio to the local sweep and the difference per trial (the workers' overhead: heartbeats,
counting the study, the member locks, reading every worker's points for the tables).

    python bench/bench_workers.py --trials 6 24          # about 8 minutes on 2 CPU cores
    python bench/bench_workers.py --trials 4 --repeat 1 # a smoke run
    python bench/bench_workers.py --postgres postgresql://me@db/bench   # an existing server

Run it with nothing else on the machine. Not a test: nothing here asserts a speed.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def sweep(work, name, trials, epochs, *own):
    """The argv of one sweep.py (a worker, with --storage in `own`) into WORK/name."""
    out = os.path.join(work, name)
    argv = [sys.executable, os.path.join(ROOT, "sweep.py"), "--grid", os.path.join(work, "space.json"), "--out", out,
            "--search", "optuna", "--trials", str(trials), "--no-report", *own,
            "--", "--x", os.path.join(work, "X.npy"), "--y", os.path.join(work, "y.npy"), "--model", "tcn",
            "--epochs", str(epochs)]
    return argv


def timed(argvs):
    """Run the commands side by side -> wall seconds until the last ends."""
    start = time.perf_counter()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV) for a in argvs]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err[-2000:]
    return time.perf_counter() - start


def postgres_url(given, stack):
    """The --postgres URL, else a throw-away server (tests/pg.py), else None."""
    if given:
        return lambda: given
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    try:
        from pg import Server
        server = Server()
    except Exception as e:      # noqa: BLE001 -- no PostgreSQL here: the journal rows only
        print(f"(no PostgreSQL: {e})", file=sys.stderr)
        return None
    stack.append(server)
    return server.fresh_url


def kinds_of(work, T, E, W, fresh):
    """{row name: function(run index) -> the argvs run side by side}."""
    kinds = {"local sweep (OUT/optuna.db)": lambda i: [sweep(work, f"local{T}_{i}", T, E)],
             "1 worker, journal": lambda i: [sweep(work, f"j{T}_{i}", T, E, "--storage", f"journal:{work}/j{T}_{i}.log")]}
    if fresh:
        kinds["1 worker, PostgreSQL"] = lambda i: [sweep(work, f"pg{T}_{i}", T, E, "--storage", fresh())]
    if W > 1:
        kinds[f"local sweep --jobs {W}"] = lambda i: [sweep(work, f"lj{T}_{i}", T, E, "--jobs", str(W))]
        kinds[f"{W} workers, journal"] = lambda i: [sweep(work, f"wj{T}_{i}", T, E, "--storage",
                                                          f"journal:{work}/wj{T}_{i}.log") for _ in range(W)]
        if fresh:
            kinds[f"{W} workers, PostgreSQL"] = lambda i: (lambda url: [sweep(work, f"wp{T}_{i}", T, E, "--storage",
                                                                              url) for _ in range(W)])(fresh())
    return kinds


def base_of(kind, W):
    return ("local sweep (OUT/optuna.db)" if "1 worker" in kind else f"local sweep --jobs {W}" if "workers" in kind
            else None)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, nargs="+", default=[12],
                   help="the study's size; two sizes also give the cost of one more trial (the slope)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="W workers against a local --jobs W (1: leave out)")
    p.add_argument("--postgres", help="an existing server's URL (default: a throw-away one from tests/pg.py)")
    args = p.parse_args()
    from bench_sweep import make_windows        # beside this file
    servers, walls = [], {}
    with tempfile.TemporaryDirectory() as work:
        x, y = make_windows(96, t=32)
        np.save(os.path.join(work, "X.npy"), x)
        np.save(os.path.join(work, "y.npy"), y)
        with open(os.path.join(work, "space.json"), "w") as f:
            json.dump({"lr": {"log": [1e-3, 1e-2]}}, f)
        fresh = postgres_url(args.postgres, servers)
        try:
            for i in range(args.repeat):
                for T in args.trials:
                    for kind, argvs in kinds_of(work, T, args.epochs, args.workers, fresh).items():
                        # alternately: the machine's drift hits each alike
                        walls.setdefault((kind, T), []).append(timed(argvs(i)))
        finally:
            for server in servers:
                server.close()
    print(f"\ntcn, {args.epochs} epochs on 96 windows; {args.repeat} runs each, alternately; medians; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n")
    print("| sweep | trials | s per trial | vs its local sweep | difference per trial |\n|---|---|---|---|---|")
    med = {key: statistics.median(w) for key, w in walls.items()}
    for (kind, T), wall in med.items():
        base = base_of(kind, args.workers)
        row = f"| {kind} | {T} | {wall / T:.3f} |"
        print(row + (" 1 | — |" if base is None else
                     f" {wall / med[base, T]:.2f}× | {1000 * (wall - med[base, T]) / T:+.0f} ms |"))
    if len(args.trials) > 1:
        lo, hi = min(args.trials), max(args.trials)
        print(f"\nOne more trial (the slope from {lo} to {hi} trials: start-up and study creation cancel out):\n")
        print("| sweep | s per extra trial | vs its local sweep |\n|---|---|---|")
        slope = {kind: (med[kind, hi] - med[kind, lo]) / (hi - lo) for kind, _ in med}
        for kind, value in slope.items():
            base = base_of(kind, args.workers)
            print(f"| {kind} | {value:.3f} | " + ("1 |" if base is None else f"{value / slope[base]:.2f}× |"))


if __name__ == "__main__":
    main()
