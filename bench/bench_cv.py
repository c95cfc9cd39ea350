"""Choosing the default recipe without touching a test split: k-fold cross-validation on the
official *train* split of each UEA set of bench_accuracy.py.

    python bench/bench_cv.py                                  # every recipe, every set, 4 folds
    python bench/bench_cv.py --sets EyesOpenShut --recipes minirocket eegnet-all

Each fold's training windows go to train.py (with the recipe's flags; the recipe's own
validation split, if any, is taken from them), and the fold's held-out windows are scored once
by infer.py from the saved checkpoint. A recipe's score on a set is its accuracy over all
held-out windows (each training window is held out exactly once). Pairs of recipes are also
scored as ensembles (class probabilities averaged), from the same held-out predictions.
The test splits are never read. Prints a markdown table; --out writes every number as JSON.
"""
import argparse
import concurrent.futures
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_accuracy import SETS, fetch_set, write_json  # noqa: E402

sys.path.insert(0, ROOT)
from biosig.models import MODELS  # noqa: E402

EEGNET = ["--model", "eegnet", *MODELS["eegnet"].recipe]      # its recipe today: the measured one
# name -> train.py flags
RECIPES = {
    "minirocket": ["--model", "minirocket", "--epochs", "10"],
    "minirocket-all": ["--model", "minirocket", *MODELS["minirocket"].recipe, "--val-split", "0"],
    "eegnet-all": [*EEGNET, "--val-split", "0"],
    "eegnet-val": EEGNET,
    "eegnet-all-aug": [*EEGNET, "--val-split", "0", "--augment", "shift", "scale", "noise"],
    "shallow-all": ["--model", "shallow", "--standardize", "--schedule", "cosine", "--lr", "6.25e-4", "--wd", "0",
                    "--drop", "0.5", "--epochs", "100", "--val-split", "0"],
}


def make_folds(data, k, seed, cache):
    """Stratified k folds of the train split: cache/NAME-cvK/foldI/{X,y}_{train,test}.npy."""
    out = os.path.join(cache, f"{os.path.basename(data)}-cv{k}-s{seed}")
    if os.path.exists(os.path.join(out, "done")):
        return [os.path.join(out, f"fold{i}") for i in range(k)]
    X, y = np.load(os.path.join(data, "X_train.npy")), np.load(os.path.join(data, "y_train.npy"))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), np.int64)
    for cls in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == cls))
        fold_of[members] = (np.arange(len(members)) + rng.integers(k)) % k
    dirs = []
    for i in range(k):
        d = os.path.join(out, f"fold{i}")
        os.makedirs(d, exist_ok=True)
        for split, mask in (("train", fold_of != i), ("test", fold_of == i)):
            np.save(os.path.join(d, f"X_{split}.npy"), X[mask])
            np.save(os.path.join(d, f"y_{split}.npy"), y[mask])
        dirs.append(d)
    open(os.path.join(out, "done"), "w").close()
    return dirs


def run_fold(fold, flags, seed, env, work):
    """train.py on the fold's training windows, infer.py on its held-out ones -> (probs, y, seconds)."""
    run_dir = tempfile.mkdtemp(dir=work)
    ckpt = os.path.join(run_dir, "best.pt")
    train = [sys.executable, os.path.join(ROOT, "train.py"), "--x", os.path.join(fold, "X_train.npy"),
             "--y", os.path.join(fold, "y_train.npy"), "--seed", str(seed), "--run-dir", os.path.join(run_dir, "r"),
             "--save", ckpt, *flags]
    proc = subprocess.run(train, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(train)}\n{proc.stderr[-1500:]}")
    with open(os.path.join(run_dir, "r", "summary.json")) as f:
        seconds = json.load(f)["wall_s"]
    probs = os.path.join(run_dir, "probs.npy")
    infer = [sys.executable, os.path.join(ROOT, "infer.py"), "--ckpt", ckpt, "--x", os.path.join(fold, "X_test.npy"),
             "--out", probs, "--quiet"]
    proc = subprocess.run(infer, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(infer)}\n{proc.stderr[-1500:]}")
    return np.load(probs), np.load(os.path.join(fold, "y_test.npy")), seconds


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and of every training run")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "biosig-bench"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    results = {"folds": args.folds, "seed": args.seed, "recipes": {r: RECIPES[r] for r in args.recipes}, "sets": {}}
    with tempfile.TemporaryDirectory() as work, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        jobs = {}
        for s in args.sets:
            for i, fold in enumerate(make_folds(fetch_set(s, args.cache), args.folds, args.seed, args.cache)):
                for r in args.recipes:
                    jobs[pool.submit(run_fold, fold, RECIPES[r], args.seed, env, work)] = (s, r, i)
        held, failed = {}, {}
        for future in concurrent.futures.as_completed(jobs):
            s, r, i = jobs[future]
            try:
                held[(s, r, i)] = future.result()
            except RuntimeError as e:      # e.g. windows too short for the model: that recipe fails on that set
                failed[(s, r)] = str(e).strip().splitlines()[-1]
                print(f"  {s} / {r} / fold {i}: failed: {failed[(s, r)]}", flush=True)
                continue
            print(f"  {s} / {r} / fold {i}: acc {np.mean(held[(s, r, i)][0].argmax(1) == held[(s, r, i)][1]):.3f} "
                  f"in {held[(s, r, i)][2]:.1f}s  [{time.perf_counter() - start:.0f}s]", flush=True)
    for s in args.sets:
        rows = {}
        combos = [(r,) for r in args.recipes] + list(itertools.combinations(args.recipes, 2))
        for combo in combos:
            if any((s, r) in failed for r in combo):
                rows[" + ".join(combo)] = {"failed": next(failed[(s, r)] for r in combo if (s, r) in failed)}
                continue
            correct = total = 0
            seconds = 0.0
            for i in range(args.folds):
                probs = np.mean([held[(s, r, i)][0] for r in combo], axis=0)
                y = held[(s, combo[0], i)][1]
                correct += int((probs.argmax(1) == y).sum())
                total += len(y)
                seconds += sum(held[(s, r, i)][2] for r in combo)
            rows[" + ".join(combo)] = {"cv_acc": correct / total, "train_s_per_fold": seconds / args.folds}
        results["sets"][s] = rows
    results["wall_s"] = round(time.perf_counter() - start, 1)
    names = list(next(iter(results["sets"].values())))
    print("\n| recipe | " + " | ".join(args.sets) + " | mean |")
    print("|---|" + "---:|" * (len(args.sets) + 1))
    for name in names:
        cells = [results["sets"][s][name] for s in args.sets]
        accs = [c.get("cv_acc", np.nan) for c in cells]
        print(f"| {name} | " + " | ".join(f"{c['cv_acc']:.3f} ({c['train_s_per_fold']:.0f}s)" if "cv_acc" in c
                                          else "failed" for c in cells) + f" | {np.mean(accs):.3f} |")
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
