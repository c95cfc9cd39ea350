"""Benchmark: training throughput with torch's default threads against the count biosig chooses
(biosig/threads.py: the usable CPUs, OpenMP threads that spin briefly, then sleep), on a loaded
machine and without the extra load.

    python bench/bench_threads.py                 # about 2 minutes
    python bench/bench_threads.py --rounds 5 --seconds 4 --burners 2

Each side is a fresh process running tcn training steps (train.py's model at its defaults,
(B, C, F, T) = (64, 6, 1, 100), BasicMotions' shape; AdamW) for --seconds, taken in turn, --rounds
rounds, once while --burners processes spin on the CPU ("loaded") and once without them:
  torch default   no OMP_NUM_THREADS, OMP_WAIT_POLICY or GOMP_SPINCOUNT: torch's own choice
                  (one thread per physical core, OpenMP's spin-waiting), as train.py ran before
  biosig          what train.py does now: threads.quiet_waiting() before torch loads, then
                  threads.apply() (the usable CPUs)
  1 thread        OMP_NUM_THREADS=1, the README's old advice
Prints a markdown table of median samples/s and the ratio biosig / torch default. Not a test:
nothing here asserts a speed. Other jobs on the machine count as load too: the load average is printed.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDES = ("torch default", "biosig", "1 thread")
SHAPE, BATCH = (640, 6, 1, 100), 64


def worker(side, seconds):
    """In the side's own process: train steps for `seconds` -> prints 'threads samples_per_s'."""
    sys.path.insert(0, ROOT)
    from biosig import threads
    if side == "biosig":
        threads.quiet_waiting()
    import torch
    from biosig.training import build, options
    from biosig.models import build_model
    if side == "biosig":
        threads.apply(None)
    torch.manual_seed(0)
    args = options.train_parser().parse_args(["--x", "X.npy", "--y", "y.npy", "--model", "tcn"])
    model = build_model(build.model_config(args, SHAPE, 4))
    optimizer = torch.optim.AdamW(model.parameters(), 3e-4, weight_decay=1e-4)
    x, y = torch.randn(BATCH, *SHAPE[1:]), torch.randint(0, 4, (BATCH,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    for _ in range(3):
        step()
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    print(torch.get_num_threads(), BATCH * steps / (time.perf_counter() - start))


def measure(side, seconds):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                            "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if side == "1 thread":
        env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", side, "--seconds", str(seconds)],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return int(out[0]), float(out[1])


def burn():
    while True:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="training time per measure")
    ap.add_argument("--burners", type=int, default=None,
                    help="busy-loop processes for the loaded case (default: one per usable CPU)")
    ap.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.seconds)
    sys.path.insert(0, ROOT)
    from biosig.threads import usable_cpus
    cpus, why = usable_cpus()
    burners = cpus if args.burners is None else args.burners
    print(f"{cpus} usable CPUs ({why}); load average before: {os.getloadavg()[0]:.2f}; tcn {SHAPE[1:]} batch "
          f"{BATCH}; median of {args.rounds} rounds of {args.seconds:g} s", flush=True)
    print("\n| machine | side | threads | samples/s (median) | rounds | biosig / torch default |")
    print("|---|---|---|---|---|---|")
    for loaded in (True, False):
        procs = []
        if loaded:
            import multiprocessing
            procs = [multiprocessing.Process(target=burn, daemon=True) for _ in range(burners)]
            for p in procs:
                p.start()
            time.sleep(0.5)
        try:
            results = {side: [] for side in SIDES}
            for _ in range(args.rounds):
                for side in SIDES:                     # in turn: drifting load hits every side alike
                    results[side].append(measure(side, args.seconds))
        finally:
            for p in procs:
                p.terminate()
                p.join()
        label = f"{burners} busy-loop process(es)" if loaded else "no extra load"
        med = {side: statistics.median(r for _, r in results[side]) for side in SIDES}
        for side in SIDES:
            rates = ", ".join(f"{r:.0f}" for _, r in results[side])
            ratio = f"{med[side] / med['torch default']:.1f}x" if side != "torch default" else ""
            print(f"| {label} | {side} | {results[side][0][0]} | {med[side]:,.0f} | {rates} | {ratio} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
