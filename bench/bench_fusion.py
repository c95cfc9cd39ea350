"""Benchmark: several inputs at their own rates (issue 30) -- each input alone against early, late
and cross-attention fusion, and several targets in one network against one network per target.

    python bench/bench_fusion.py --out fusion.md                 # both sets, 3 seeds (~45 min on an idle core)
    python bench/bench_fusion.py --sets basicmotions --jobs 2    # one set, two trainings at a time
    python bench/bench_fusion.py --quick                         # 1 seed, 3 epochs for the trained encoders
    python bench/bench_fusion.py --merge a.json b.json --out fusion.md   # one table from two runs

Data.
- wearable: biosig.data.examples.wearable(n=600, n_test=200, seed=s): wrist PPG (N, 1, 1, 512) at
  64 Hz and accelerometer (N, 3, 1, 256) at 32 Hz, heart rate (bpm) and activity (rest, walk, run),
  with each input's signal contract beside it. Seed s generates the data AND seeds the training, so
  the spread over seeds covers both a new draw of the data and a new initialisation.
- BasicMotions (UEA, official train/test split, 40 + 40 windows, 4 classes): its 6 channels at 10 Hz
  split into the accelerometer (the first 3: (N, 3, 1, 100) at 10 Hz) and the gyroscope (the last 3),
  decimated to 5 Hz (scipy.signal.decimate, an order-20 FIR low-pass then every 2nd sample:
  (N, 3, 1, 50)), each with NAME.signal.json {"fs": ...}, so the two inputs have different rates.
  The .ts files come from the aeon wheel as in bench_accuracy.py (--cache, fetched once). Seed s
  seeds the training only.

Rows (train.py as a subprocess, OMP_NUM_THREADS=--threads; --x-test/--y-test score the checkpoint
the validation split picked, once, on the test split: summary.json "test"; the test split never
chooses anything):
- first / second input alone: `--model minirocket` on one input (wearable PPG / accelerometer,
  BasicMotions accelerometer / gyroscope);
- early, late fusion: `--model fusion-early`, `--model fusion-late` (their defaults: MiniRocket
  encoders, the ridge head solved in closed form);
- attention fusion: `--model fusion-attention` (default tcn encoders) with --epochs (40) and
  --patience (8);
- multi-task: on the wearable, one network with two heads (`--y hr=... --y act=... --task
  hr=regression --task act=classification`) of the fusion model with the lowest mean validation
  heart-rate MAE over the seeds in the single-target rows (summary.json best_metrics: validation,
  never test).
Every other row is single-target: heart rate (`--task regression`) and activity are separate runs.

Prints a markdown table -- configuration | wearable HR MAE (bpm) | wearable activity accuracy |
BasicMotions accuracy | seconds per training (HR / activity / BasicMotions), mean +- std over the
seeds (ddof 1) -- writes it to --out (markdown) and every number (per seed, with the commands and
the load average) to the same name with .json. Seconds are summary.json `wall_s` (epochs,
validation, checkpoint writes; not the interpreter's start-up): on a shared machine they are noisy.
Not a test: nothing asserts.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_accuracy import fetch_set  # noqa: E402  BasicMotions' .npy files from the aeon wheel

FUSION = {"early": ["--model", "fusion-early"], "late": ["--model", "fusion-late"],
          "attention": ["--model", "fusion-attention"]}
ROWS = [("first", "first input alone (wearable PPG; BasicMotions acc)"),
        ("second", "second input alone (wearable acc; BasicMotions gyro)"),
        ("early", "early fusion (`fusion-early`, MiniRocket)"),
        ("late", "late fusion (`fusion-late`, MiniRocket encoders)"),
        ("attention", "attention fusion (`fusion-attention`, tcn encoders)"),
        ("multi", "multi-task: HR + activity, one network")]


# ---------------------------------------------------------------- data

def wearable_data(seed, cache):
    """The wearable example drawn with `seed`, written as .npy with its sidecars; returns the dir."""
    sys.path.insert(0, ROOT)
    from biosig.cli.examples import described
    from biosig.data.examples import wearable
    out = tempfile.mkdtemp(dir=cache, prefix=f"wearable-{seed}-")
    for name, array in wearable(n=600, n_test=200, seed=seed).items():
        np.save(os.path.join(out, f"{name}.npy"), array)
    described(out)
    return out


def basicmotions_data(cache):
    """BasicMotions as two inputs: acc.npy (N, 3, 1, 100) at 10 Hz, gyro.npy (N, 3, 1, 50) at 5 Hz."""
    from scipy.signal import decimate
    src = fetch_set("BasicMotions", cache)
    out = os.path.join(cache, "BasicMotions-fusion")
    os.makedirs(out, exist_ok=True)
    for split, suffix in (("train", ""), ("test", "_test")):
        X = np.load(os.path.join(src, f"X_{split}.npy"))              # (N, 6, 1, 100)
        gyro = decimate(X[:, 3:], 2, ftype="fir", axis=-1, zero_phase=True)
        for name, array, fs in (("acc", X[:, :3], 10), ("gyro", gyro, 5)):
            np.save(os.path.join(out, f"{name}{suffix}.npy"), np.ascontiguousarray(array, dtype=np.float32))
            with open(os.path.join(out, f"{name}{suffix}.signal.json"), "w") as f:
                json.dump({"fs": fs}, f)
        np.save(os.path.join(out, f"y{suffix}.npy"), np.load(os.path.join(src, f"y_{split}.npy")))
    return out


# ---------------------------------------------------------------- one training

def train(inputs, targets, flags, seed, env, work, name):
    """train.py on {input: (train, test)} and {target: (train, test, task)}; returns the numbers."""
    run_dir = os.path.join(work, f"{name}-seed{seed}")
    several = len(targets) > 1
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--seed", str(seed),
           "--run-dir", run_dir, "--save", os.path.join(run_dir, "best.pt"), *flags]
    named = len(inputs) > 1
    for key, (x, x_test) in inputs.items():
        cmd += ["--x", f"{key}={x}" if named else x, "--x-test", f"{key}={x_test}" if named else x_test]
    for key, (y, y_test, task) in targets.items():
        cmd += ["--y", f"{key}={y}" if several else y, "--y-test", f"{key}={y_test}" if several else y_test,
                "--task", f"{key}={task}" if several else task]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    process_s = round(time.perf_counter() - start, 3)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
        return {"error": f"train.py exit {proc.returncode}: {lines[-1]}", "command": cmd}
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    prefix = {key: f"{key}:" if several else "" for key in targets}
    metric = {key: "mae" if task == "regression" else "acc" for key, (_, _, task) in targets.items()}
    return {"test": {key: summary["test"][prefix[key] + metric[key]] for key in targets},
            "val": {key: summary["best_metrics"][prefix[key] + metric[key]] for key in targets},
            "wall_s": summary["wall_s"], "process_s": process_s, "epochs_run": summary["epochs_run"],
            "command": cmd}


def jobs_for(set_name, data, seed, trained):
    """[(row, target, inputs, targets, flags)] of one set and seed; the multi-task row comes later."""
    if set_name == "wearable":
        first, second = "ppg", "acc"
        targets = {"hr": {"hr": (f"{data}/hr.npy", f"{data}/hr_test.npy", "regression")},
                   "act": {"act": (f"{data}/act.npy", f"{data}/act_test.npy", "classification")}}
    else:
        first, second = "acc", "gyro"
        targets = {"bm": {"y": (f"{data}/y.npy", f"{data}/y_test.npy", "classification")}}
    inputs = {key: (f"{data}/{key}.npy", f"{data}/{key}_test.npy") for key in (first, second)}
    jobs = []
    for target, target_files in targets.items():
        jobs.append(("first", target, {first: inputs[first]}, target_files, ["--model", "minirocket"]))
        jobs.append(("second", target, {second: inputs[second]}, target_files, ["--model", "minirocket"]))
        for row, flags in FUSION.items():
            jobs.append((row, target, inputs, target_files, flags + (trained if row == "attention" else [])))
    return jobs


def multi_job(data, best, trained):
    """The multi-task row: one network of fusion model `best` with a heart-rate and an activity head."""
    targets = {"hr": (f"{data}/hr.npy", f"{data}/hr_test.npy", "regression"),
               "act": (f"{data}/act.npy", f"{data}/act_test.npy", "classification")}
    inputs = {key: (f"{data}/{key}.npy", f"{data}/{key}_test.npy") for key in ("ppg", "acc")}
    return ("multi", "hr+act", inputs, targets, FUSION[best] + (trained if best == "attention" else []))


# ---------------------------------------------------------------- the table

def cell(values, digits, note=" (1 seed)"):
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{note}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(results):
    """The markdown table of results["runs"] (a list of {row, target, seed, test, wall_s, ...})."""
    def pick(row, target, key, field="test"):
        return [r[field][key] for r in results["runs"] if r["row"] == row and r["target"] == target
                and "error" not in r]

    def seconds(row, target):
        return [r["wall_s"] for r in results["runs"] if r["row"] == row and r["target"] == target
                and "error" not in r]
    lines = ["| configuration | wearable HR MAE (bpm) | wearable activity acc | BasicMotions acc | "
             "s per training (HR / act / BM) |", "|---|---|---|---|---|"]
    best = results.get("multi_model")
    for row, name in ROWS:
        if row == "multi":
            name = f"multi-task: HR + activity, one `fusion-{best}` network" if best else name
            hr, act, bm = pick(row, "hr+act", "hr"), pick(row, "hr+act", "act"), []
            wall = f"{cell(seconds(row, 'hr+act'), 0, '')} (both)"
        else:
            hr, act, bm = pick(row, "hr", "hr"), pick(row, "act", "act"), pick(row, "bm", "y")
            wall = " / ".join(cell(seconds(row, t), 0, "") for t in ("hr", "act", "bm"))
        lines.append(f"| {name} | {cell(hr, 2)} | {cell(act, 3)} | {cell(bm, 3)} | {wall} |")
    errors = [f"- {r['row']} / {r['target']} seed {r['seed']}: {r['error']}" for r in results["runs"] if "error" in r]
    return "\n".join(lines + (["", "Failed runs:"] + errors if errors else []))


def best_fusion(runs):
    """The fusion model with the lowest mean validation heart-rate MAE (never the test split), among
    the fusion rows run (late when none was)."""
    val = {row: [r["val"]["hr"] for r in runs if r["row"] == row and r["target"] == "hr" and "error" not in r]
           for row in FUSION}
    val = {row: np.mean(v) for row, v in val.items() if v}
    return min(val, key=val.get) if val else "late"


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", choices=["wearable", "basicmotions"], default=["wearable", "basicmotions"])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=40, help="epochs of the attention fusion rows (default 40)")
    p.add_argument("--patience", type=int, default=8, help="their early stopping (default 8)")
    p.add_argument("--rows", nargs="+", choices=[r for r, _ in ROWS], default=[r for r, _ in ROWS],
                   help="the rows to run (default: all)")
    p.add_argument("--multi-model", choices=list(FUSION), help="the multi-task row's fusion model "
                   "(default: the lowest mean validation HR MAE of the single-target fusion rows)")
    p.add_argument("--quick", action="store_true", help="1 seed, 3 epochs")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "biosig-bench"),
                   help="where the aeon wheel and BasicMotions are kept (default ~/.cache/biosig-bench)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (default 1)")
    p.add_argument("--out", help="write the table here (markdown) and every number beside it (.json)")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="one table from these .json files (a later "
                   "file's runs of a set replace an earlier file's); nothing is run")
    args = p.parse_args()
    if args.merge:
        results = merge(args.merge)
    else:
        results = measure(args)
    text = table(results)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        write_json(os.path.splitext(args.out)[0] + ".json", results)
        print(f"\ntable -> {args.out}, numbers -> {os.path.splitext(args.out)[0]}.json")


def measure(args):
    if args.quick:
        args.seeds, args.epochs = 1, 3
    seeds = list(range(args.seeds))
    trained = ["--epochs", str(args.epochs), "--patience", str(args.patience)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               NUMBA_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    os.makedirs(args.cache, exist_ok=True)
    load = [round(x, 2) for x in os.getloadavg()]
    results = {"machine": {"platform": platform.platform(), "cores": len(os.sched_getaffinity(0)),
                           "python": platform.python_version(), "load_avg_start": load},
               "settings": {"sets": args.sets, "rows": args.rows, "seeds": seeds, "attention_flags": trained,
                            "threads": args.threads, "jobs": args.jobs}, "runs": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.cache, prefix=".fusion-") as work, \
            concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        data = {}
        if "wearable" in args.sets:
            data.update({("wearable", s): wearable_data(s, work) for s in seeds})
        if "basicmotions" in args.sets:
            motions = basicmotions_data(args.cache)
            data.update({("basicmotions", s): motions for s in seeds})
        jobs = [(s, job) for (set_name, s), d in data.items() for job in jobs_for(set_name, d, s, trained)
                if job[0] in args.rows]
        jobs.sort(key=lambda job: job[1][0] != "attention")   # the longest first: two at a time end together
        run_all(pool, jobs, env, work, results, args.out, start)
        if "wearable" in args.sets and "multi" in args.rows:
            best = args.multi_model or best_fusion(results["runs"])
            results["multi_model"] = best
            print(f"multi-task row: fusion-{best}" + ("" if args.multi_model else
                  " (the lowest mean validation HR MAE)"), flush=True)
            run_all(pool, [(s, multi_job(data[("wearable", s)], best, trained)) for s in seeds],
                    env, work, results, args.out, start)
    results["wall_s"] = round(time.perf_counter() - start, 1)
    return results


def run_all(pool, jobs, env, work, results, out, start):
    """Every (seed, job) in the pool; each result is appended to results["runs"] as it finishes."""
    futures = {}
    for seed, (row, target, inputs, targets, flags) in jobs:
        name = f"{row}-{target}-{'-'.join(inputs)}"
        futures[pool.submit(with_load, train, inputs, targets, flags, seed, env, work, name)] = (row, target, seed)
    for future in concurrent.futures.as_completed(futures):
        row, target, seed = futures[future]
        res = dict(future.result(), row=row, target=target, seed=seed)
        results["runs"].append(res)
        said = res.get("error") or f"test {res['test']} in {res['wall_s']:.1f}s ({res['epochs_run']} epochs)"
        print(f"  {row} / {target} / seed {seed}: {said}  [{time.perf_counter() - start:.0f}s]", flush=True)
        if out:     # after every run: a bench stopped half-way keeps what it measured
            write_json(os.path.splitext(out)[0] + ".json", results)


def with_load(job, *args):
    before = [round(x, 2) for x in os.getloadavg()]
    return dict(job(*args), load_avg={"before": before, "after": [round(x, 2) for x in os.getloadavg()]})


def merge(paths):
    """One result from several --out .json files: a later file's runs of a target replace earlier ones."""
    merged = {"merged": paths, "runs": []}
    for path in paths:
        with open(path) as f:
            res = json.load(f)
        targets = {(r["row"], r["target"]) for r in res["runs"]}
        merged["runs"] = [r for r in merged["runs"] if (r["row"], r["target"]) not in targets] + res["runs"]
        merged["multi_model"] = res.get("multi_model", merged.get("multi_model"))
    return merged


def write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
