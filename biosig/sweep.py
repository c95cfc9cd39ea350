"""Sweeps: run train.py once per point of a grid of its flags (x seeds), in parallel, resumably.

A grid file is a JSON object {flag: [values]} (their cartesian product) or a list of such
objects (the union of their products); flag names are train.py's without dashes. `true` is
the bare flag, `false`/`null` leave it out. The data are flags like any other: a grid may give
x and y (one model per subject), the flags after -- whatever every trial shares.

The sweep directory OUT:
  sweep.json              the grid and options of the command, checked when it is run again
  trials/<id>/            one trial: trial.json (its state), log.txt (stdout + stderr),
                          best.pt (train.py --save), run/ (train.py --run-dir)
  previous/<id>.<k>/      an earlier attempt moved aside before the trial was started afresh
  trials.csv, summary.csv, best.json   results, rewritten atomically after every trial
  .lock                   flock-ed while a sweep runs here

Every trial is a subprocess started from an argv list (never a shell string), in its own
session, so that stopping the sweep can stop the trial's whole process group.
"""
import csv
import ctypes
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_path
from .errors import UserError
from .grid import (absolute_paths, check_grid_flags, check_paths_exist, check_train_flags, expand, is_number,
                   load_grid, point_flags, render, strict_parser, train_options, trial_id)
from .parquet import is_parquet
from .runs import write_json

FAILED = ("failed", "timeout")


# ---------------------------------------------------------------------------------- trials

@dataclass
class Trial:
    """One run of train.py. `argv` is its command; `base_argv` the same without --run-dir/--save."""
    id: str
    point_id: str
    params: dict
    seed: int              # the seed train.py uses (from --seeds, the flags after --, or its default)
    base_argv: list
    argv: list
    dir: str
    status: str = "pending"     # pending | incomplete | running | completed | failed | timeout | interrupted
    exit_code: object = None
    wall_s: float = 0.0
    error: str = ""
    summary: dict = field(default=None, repr=False)

    @property
    def run_dir(self):
        return os.path.join(self.dir, "run")

    @property
    def checkpoint(self):
        return os.path.join(self.dir, "best.pt")

    @property
    def log(self):
        return os.path.join(self.dir, "log.txt")

    @property
    def state_path(self):
        return os.path.join(self.dir, "trial.json")


def build_trials(points, seeds, train_flags, options, train_parser, out, command_prefix, grid_path):
    """One Trial per (point, seed), each command checked by train.py's own parser (types, choices)
    before anything runs, and for its data: --x and --y (not needed with a parquet --x) from the
    flags after -- or the grid. command_prefix: [python, train.py] or launcher + [train.py]."""
    strict_parser(train_parser, "train.py flags after --").parse_args(train_flags)
    data_in_grid = any(flag in ("x", "y") for point in points for flag in point)
    trials = []
    for point in points:
        given = point_flags(point, options)
        for seed in seeds or [None]:
            seed_flags = [] if seed is None else ["--seed", str(seed)]
            tid = trial_id(point, seed)
            directory = os.path.join(out, "trials", tid)
            per_trial = ["--run-dir", os.path.join(directory, "run"), "--save", os.path.join(directory, "best.pt")]
            flags = train_flags + given + seed_flags
            parsed = strict_parser(train_parser, f"{grid_path}: trial {tid}").parse_args(flags + per_trial)
            if not (parsed.x and (parsed.y or is_parquet(parsed.x))):
                where = f"{grid_path}: trial {tid}" if data_in_grid else "train.py flags after --"
                raise UserError(f"{where}: --x X.npy and --y y.npy are needed (after --, or as the grid's "
                                f"x and y; --y may be left out with a parquet --x)")
            trials.append(Trial(id=tid, point_id=trial_id(point), params=point, seed=parsed.seed,
                                base_argv=command_prefix + flags, argv=command_prefix + flags + per_trial,
                                dir=directory))
    return trials


def read_summary(run_dir):
    """train.py's summary.json if the run finished (completed or early-stopped), else None."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(summary, dict) and summary.get("status") in ("completed", "early_stopped") and "best" in summary:
        return summary
    return None


def load_state(trial):
    """Set trial.status from OUT: failed/timeout as recorded, completed if train.py wrote its
    summary, incomplete if an attempt was started, else pending."""
    state = {}
    if os.path.exists(trial.state_path):
        try:
            with open(trial.state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {}
    trial.exit_code, trial.error = state.get("exit_code"), state.get("error", "")
    trial.wall_s = state.get("wall_s") or 0.0
    trial.summary = read_summary(trial.run_dir)
    if state.get("status") in FAILED:
        trial.status = state["status"]
    elif trial.summary is not None:
        trial.status = "completed"
    elif os.path.exists(trial.dir):
        trial.status = "incomplete"
    else:
        trial.status = "pending"


def save_state(trial, **extra):
    write_json(trial.state_path, {"id": trial.id, "params": trial.params, "seed": trial.seed,
                                  "status": trial.status, "exit_code": trial.exit_code,
                                  "wall_s": round(trial.wall_s, 3), "error": trial.error,
                                  "argv": trial.argv, **extra})


def log_tail(path, lines=4, chars=600):
    """The last non-blank lines of a log, joined with ' | ' (one CSV cell)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    # lines starting '$ ' are the commands the sweep wrote at the top of each attempt
    tail = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("$ ")][-lines:]
    return " | ".join(tail)[-chars:]


def move_aside(out, tid):
    """An unfinished or failed attempt OUT/trials/<id> goes to OUT/previous/<id>.<k> (train.py
    never reuses a run dir)."""
    previous = os.path.join(out, "previous")
    os.makedirs(previous, exist_ok=True)
    k = 1
    while os.path.exists(os.path.join(previous, f"{tid}.{k}")):
        k += 1
    os.rename(os.path.join(out, "trials", tid), os.path.join(previous, f"{tid}.{k}"))


# ------------------------------------------------------------------------------- processes

def _die_with_parent_fn():
    """Linux: a preexec function asking the kernel to SIGTERM the trial when the sweep dies,
    even by SIGKILL, so no trial outlives its sweep. None elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec():
        prctl(1, signal.SIGTERM)            # PR_SET_PDEATHSIG
        if os.getppid() != parent:          # the sweep died before prctl
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


def stop_groups(procs, grace, hurry=lambda: False):
    """SIGTERM each process's group, wait up to `grace` s for the leaders (less if hurry()),
    then SIGKILL the groups (also what is left of a group whose leader has exited)."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not hurry() and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)         # start_new_session: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


class Signals:
    """Catches SIGINT/SIGTERM while trials run: the loop stops them and exits 128 + signal."""

    def __init__(self):
        self.signum, self.count, self.saved = None, 0, {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.saved[signum] = signal.signal(signum, self.handle)
        return self

    def handle(self, signum, frame):
        self.signum = self.signum or signum
        self.count += 1

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def trial_envs(jobs, gpus):
    """One environment per parallel slot: its CUDA_VISIBLE_DEVICES (len(gpus) // jobs GPUs each)
    and OMP/MKL threads = cores // jobs, so parallel trials do not oversubscribe the CPU (never
    more than an OMP_NUM_THREADS the sweep itself was given: a cluster job's share, say)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // jobs)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        threads = min(threads, int(os.environ["OMP_NUM_THREADS"]))
    threads = str(threads)
    envs = []
    for slot in range(jobs):
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        if gpus:
            per = len(gpus) // jobs
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[slot * per:(slot + 1) * per])
        envs.append(env)
    return envs


def start_trial(trial, env, out, preexec):
    """Launch one trial. An interrupted attempt that saved run/last.pt continues from it
    (train.py --resume); any other earlier attempt is moved aside and the trial starts afresh."""
    last = os.path.join(trial.run_dir, "last.pt")
    continuing = trial.status == "incomplete" and os.path.exists(last)
    if not continuing:
        if os.path.exists(trial.dir):
            move_aside(out, trial.id)
        trial.wall_s, trial.exit_code = 0.0, None
    os.makedirs(trial.dir, exist_ok=True)
    argv = trial.argv + (["--resume", last] if continuing else [])
    with open(trial.log, "a" if continuing else "w") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=preexec)
    trial.status, trial.error = "running", ""
    save_state(trial, pid=proc.pid, started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return proc


def finish_trial(trial, returncode, seconds, status=None):
    """Record how an attempt ended: completed (exit 0 and a summary.json), failed, timeout, interrupted."""
    trial.summary = read_summary(trial.run_dir)
    trial.exit_code, trial.wall_s = returncode, trial.wall_s + seconds
    if status is None:
        status = "completed" if returncode == 0 and trial.summary is not None else "failed"
    trial.status = status
    trial.error = ""
    if status == "failed" and returncode == 0:
        trial.error = "train.py exited 0 but wrote no run/summary.json"
    elif status != "completed":
        trial.error = log_tail(trial.log)
    save_state(trial, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))


def run_trials(todo, envs, out, timeout, grace, on_finish):
    """Run the trials, len(envs) at a time. Returns the signal number that stopped the sweep,
    or None. Running trials are always stopped on the way out, whatever happens."""
    preexec = _die_with_parent_fn()
    queue, free, running = list(todo), list(range(len(envs))), []   # running: (trial, proc, slot, t0)
    with Signals() as caught:
        try:
            while (queue or running) and caught.signum is None:
                while queue and free and caught.signum is None:
                    trial, slot = queue.pop(0), free.pop(0)
                    running.append((trial, start_trial(trial, envs[slot], out, preexec), slot, time.monotonic()))
                for entry in list(running):
                    trial, proc, slot, t0 = entry
                    returncode, status = proc.poll(), None
                    if returncode is None and timeout and time.monotonic() - t0 > timeout:
                        stop_groups([proc], grace)
                        returncode, status = proc.returncode, "timeout"
                    if returncode is not None:
                        running.remove(entry)
                        free.append(slot)
                        finish_trial(trial, returncode, time.monotonic() - t0, status)
                        on_finish(trial)
                time.sleep(0.05)
        finally:
            if running:
                stop_groups([proc for _, proc, _, _ in running], grace, hurry=lambda: caught.count > 1)
                for trial, proc, _, t0 in running:
                    finish_trial(trial, proc.returncode, time.monotonic() - t0, "interrupted")
                    on_finish(trial)
    return caught.signum


# --------------------------------------------------------------------------------- results

def objective(summary, metric):
    """The number a trial is ranked by. metric None: train.py's best monitored value
    (summary['best']). Else a top-level number of summary.json ('wall_s', ...) or a metric at
    train.py's best epoch: 'val_f1' and 'f1' both read best_metrics['f1']."""
    if summary is None:
        return None
    if metric is None or metric == summary.get("monitor"):
        value = summary.get("best")
    elif metric in summary:
        value = summary[metric]
    else:
        key = metric[len("val_"):] if metric.startswith("val_") else metric
        value = (summary.get("best_metrics") or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def objective_name_and_mode(trials, metric, mode):
    """(metric name, 'min' | 'max'): as given, else what train.py monitored, else a guess from
    the name (losses and wall_s are minimized, anything else maximized)."""
    summaries = [t.summary for t in trials if t.summary is not None]
    monitor = summaries[0]["monitor"] if summaries else None
    name = metric or monitor or "objective"
    if mode is None:
        if summaries and name == monitor:
            mode = summaries[0]["mode"]
        else:
            mode = "min" if ("loss" in name or name == "wall_s") else "max"
    return name, mode


def summarize(trials, metric, mode):
    """Per point: n completed, n failed, mean/std/min/max of the objective over its seeds.
    Returns the rows ranked best first (points without a completed trial last)."""
    points = {}
    for trial in trials:
        points.setdefault(trial.point_id, []).append(trial)
    rows = []
    for point_id, group in points.items():
        values = [v for v in (objective(t.summary, metric) for t in group if t.status == "completed") if v is not None]
        row = {"point": point_id, "params": group[0].params, "n": len(values),
               "failed": sum(t.status in FAILED for t in group), "trials": group,
               "mean": float(np.mean(values)) if values else None,
               "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
               "min": min(values) if values else None, "max": max(values) if values else None}
        rows.append(row)
    sign = 1 if mode == "min" else -1
    rows.sort(key=lambda r: (r["mean"] is None, sign * r["mean"] if r["mean"] is not None else 0))
    return rows


def write_csv(path, header, rows):
    """Write a CSV atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_results(out, trials, param_names, metric, mode):
    """trials.csv, summary.csv and (once a trial completed) best.json. Returns summarize()'s rows."""
    name, mode = objective_name_and_mode(trials, metric, mode)
    write_csv(os.path.join(out, "trials.csv"),
              ["id", *param_names, "seed", "status", "exit_code", "objective", "best_epoch", "wall_s",
               "samples_per_s", "run_dir", "error"],
              [[t.id, *[render(t.params[p]) if p in t.params else "" for p in param_names], t.seed, t.status,
                _cell(t.exit_code), _cell(objective(t.summary, metric) if t.status == "completed" else None),
                _cell((t.summary or {}).get("best_epoch")), _cell(round(t.wall_s, 2) if t.wall_s else None),
                _cell((t.summary or {}).get("train_samples_per_s")), t.run_dir, t.error] for t in trials])
    rows = summarize(trials, metric, mode)
    write_csv(os.path.join(out, "summary.csv"),
              ["rank", "point", *param_names, "n", "failed", "mean", "std", "min", "max"],
              [[rank, r["point"], *[render(r["params"][p]) if p in r["params"] else "" for p in param_names],
                r["n"], r["failed"], *[_cell(r[k]) for k in ("mean", "std", "min", "max")]]
               for rank, r in enumerate(rows, 1)])
    if rows and rows[0]["n"]:
        top = rows[0]
        done = [t for t in top["trials"] if t.status == "completed" and objective(t.summary, metric) is not None]
        pick = min if mode == "min" else max
        trial = pick(done, key=lambda t: objective(t.summary, metric))
        argv = trial.base_argv + ["--save", "best.pt"]   # a new run dir under ./runs, as train.py does
        write_json(os.path.join(out, "best.json"), {
            "metric": name, "mode": mode, "point": top["point"], "params": top["params"],
            "n": top["n"], "mean": top["mean"], "std": top["std"],
            "trial": trial.id, "seed": trial.seed, "objective": objective(trial.summary, metric),
            "checkpoint": trial.checkpoint, "run_dir": trial.run_dir,
            "argv": argv, "command": shlex.join(argv)})
    return rows


def check_metric(trials, metric):
    """--metric must name a number in the completed trials' summary.json."""
    done = [t for t in trials if t.status == "completed"]
    if metric and done and all(objective(t.summary, metric) is None for t in done):
        keys = {k for t in done for k, v in (t.summary.get("best_metrics") or {}).items()
                if isinstance(v, (int, float))}
        raise UserError(f"--metric {metric}: not in the trials' summary.json (best_metrics has "
                        f"{', '.join(sorted(keys))}; top-level numbers such as best, wall_s also work)")


def ranked_table(rows, name, mode, limit=10):
    """The best points as aligned text lines."""
    width = max([len(r["point"]) for r in rows[:limit]] + [5])
    title = f"{name} ({mode})" if any(r["n"] for r in rows) else name
    lines = [f"{'rank':>4}  {'point':<{width}}  {'n':>3}  {title:<24}  failed"]
    for rank, r in enumerate(rows[:limit], 1):
        if r["mean"] is None:
            value = "-"
        elif r["std"] is None:
            value = f"{r['mean']:.4f}"
        else:
            value = f"{r['mean']:.4f} ± {r['std']:.4f}"
        lines.append(f"{rank:>4}  {r['point']:<{width}}  {r['n']:>3}  {value:<24}  {r['failed']}")
    if len(rows) > limit:
        lines.append(f"      ... {len(rows) - limit} more in summary.csv")
    return lines


# ----------------------------------------------------------------------------- the sweep

def acquire_lock(out):
    """flock OUT/.lock for the sweep's lifetime (released by the kernel however the sweep ends)."""
    path = os.path.join(out, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(f"{out}: another sweep (pid {holder}) is running in this directory") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def trial_dirs(out):
    """Ids of the trial directories in OUT/trials."""
    trials_dir = os.path.join(out, "trials")
    return sorted(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else []


def trained_trials(out):
    """Ids of the trials in OUT/trials that trained at least one epoch (run/last.pt or run/summary.json)."""
    return [tid for tid in trial_dirs(out) if any(os.path.exists(os.path.join(out, "trials", tid, "run", name))
                                                  for name in ("last.pt", "summary.json"))]


def check_out_dir(out, train_flags):
    """OUT must be new, empty, or a sweep run with the same train.py flags (the trials' ids do
    not encode them, so other flags would mix different experiments). Returns the flags OUT was
    swept with when they differ but no trial trained with them (a command fixed after all its
    trials failed): its trials are then started afresh. Else None."""
    if not os.path.exists(out):
        return None
    if not os.path.isdir(out):
        raise UserError(f"--out {out}: exists and is not a directory")
    state_path = os.path.join(out, "sweep.json")
    if not os.path.exists(state_path):
        if set(os.listdir(out)) - {".lock"}:
            raise UserError(f"--out {out}: exists and is not a sweep directory (no sweep.json); choose another")
        return None
    try:
        with open(state_path) as f:
            before = json.load(f)["train_flags"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{state_path}: unreadable; move it away to start this sweep again") from None
    if before == train_flags:
        return None
    trained = trained_trials(out)
    if trained:
        raise UserError(f"--out {out}: was swept with train.py flags '{shlex.join(before)}' ({len(trained)} "
                        f"trial(s) trained with them), this command gives '{shlex.join(train_flags)}'; "
                        f"use another --out")
    return before


def parse_gpus(gpus, jobs):
    """'0,1,2,3' -> (['0', '1', '2', '3'], jobs): jobs defaults to one trial per GPU and must
    divide the GPUs evenly (2 jobs on 4 GPUs: 2 GPUs per trial, e.g. for torchrun)."""
    if not gpus:
        return [], jobs or 1
    ids = [g.strip() for g in gpus.split(",")]
    if not all(ids):
        raise UserError(f"--gpus {gpus}: expected a comma-separated list of GPU ids such as 0,1")
    jobs = jobs or len(ids)
    if jobs > len(ids) or len(ids) % jobs:
        raise UserError(f"--gpus {gpus}: {len(ids)} GPUs cannot be shared evenly by --jobs {jobs}")
    return ids, jobs


def run_sweep(args, train_flags, train_parser, train_script):
    """The sweep as `args` (sweep.py's options) say, with `train_flags` (after --) shared by every
    trial. Returns the exit status: 0, 1 if a trial failed, 128 + signal if stopped."""
    for flag, value, low in (("--jobs", args.jobs, 1), ("--sample", args.sample, 1)):
        if value is not None and value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    if args.timeout is not None and args.timeout <= 0:
        raise UserError(f"--timeout must be positive seconds, got {args.timeout:g}")
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds {' '.join(map(str, args.seeds))}: a seed is repeated")
    gpus, jobs = parse_gpus(args.gpus, args.jobs)
    options = train_options(train_parser)
    if not train_flags:
        raise UserError("give train.py's flags after --, e.g. -- --x X.npy --y y.npy --epochs 20")
    check_train_flags(train_flags, options)
    if args.seeds and any(options.get(t.split("=", 1)[0]) is options["--seed"] for t in train_flags):
        raise UserError("train.py flags after --: --seed conflicts with --seeds (each trial gets its seed)")
    grids = load_grid(args.grid)
    check_grid_flags(grids, options, args.grid)
    given_after = {options[t.split("=", 1)[0]].dest for t in train_flags if t.startswith("-") and not is_number(t)}
    for grid in grids:
        for flag in grid:
            if options["--" + flag].dest in given_after:
                raise UserError(f"{args.grid}: '{flag}' is in the grid and also after --; give it in one place")
    if args.metric is None and any("monitor" in grid for grid in grids):
        raise UserError(f"{args.grid}: the grid varies 'monitor', so the trials' best values are not "
                        f"comparable; choose the objective with --metric")

    out = os.path.abspath(args.out)
    shared = absolute_paths(train_flags, options)
    check_paths_exist(shared, options)
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    if not args.dry_run and (not launcher or shutil.which(launcher[0]) is None):   # a dry run may be on a login node
        raise UserError(f"--launcher {args.launcher!r}: {launcher[0] if launcher else 'an empty command'} "
                        f"is not a program on PATH")
    prefix = launcher + [os.path.abspath(train_script)]
    points = expand(grids, args.sample, args.sample_seed, args.grid, options)
    trials = build_trials(points, args.seeds, shared, options, train_parser, out, prefix, args.grid)
    param_names = list(dict.fromkeys(flag for grid in grids for flag in grid))

    replaced = check_out_dir(out, shared)
    if args.dry_run:
        if replaced is not None:
            print(f"# {out} was swept with train.py flags '{shlex.join(replaced)}' and no trial trained: "
                  f"every trial would start afresh")
        elif os.path.isdir(out):
            for trial in trials:
                load_state(trial)
        for trial in trials:
            note = {"completed": "completed, would be skipped",
                    "failed": "failed, re-run only with --retry-failed"}.get(trial.status, trial.status)
            print(f"# {trial.id} ({note})")
            print(shlex.join(trial.argv))
        return 0

    try:
        os.makedirs(out, exist_ok=True)
        lock = acquire_lock(out)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the sweep directory or its lock ({e.strerror})") from None
    try:
        return _sweep(args, out, grids, trials, shared, param_names, jobs, gpus)
    finally:
        os.close(lock)


def _sweep(args, out, grids, trials, shared, param_names, jobs, gpus):
    replaced = check_out_dir(out, shared)       # again, now that OUT is locked
    if replaced is not None:
        # no trial trained with the old flags (all failed, say, on a value train.py refused):
        # the fixed command starts every trial afresh; their attempts are kept in OUT/previous
        moved = trial_dirs(out)
        for tid in moved:
            move_aside(out, tid)
        print(f"sweep {out}: train.py flags changed from '{shlex.join(replaced)}'; no trial had trained with "
              f"them, so every trial starts afresh ({len(moved)} earlier attempt(s) moved to {out}/previous/)",
              flush=True)
    write_json(os.path.join(out, "sweep.json"), {
        "grid_file": os.path.abspath(args.grid), "grid": grids, "train_flags": shared,
        "seeds": args.seeds, "sample": args.sample, "sample_seed": args.sample_seed,
        "metric": args.metric, "mode": args.mode, "launcher": args.launcher, "jobs": jobs, "gpus": gpus,
        "timeout": args.timeout, "n_trials": len(trials), "argv": sys.argv,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for trial in trials:
        load_state(trial)
    check_metric(trials, args.metric)       # before running anything, when finished trials can tell
    retry = FAILED if args.retry_failed else ()
    todo = [t for t in trials if t.status in ("pending", "incomplete") or t.status in retry]
    n_done = sum(t.status == "completed" for t in trials)
    kept = sum(t.status in FAILED for t in trials) if not args.retry_failed else 0
    envs = trial_envs(jobs, gpus)
    print(f"sweep {out}: {len(trials)} trials, {n_done} done, {len(todo)} to run"
          + (f", {kept} failed kept (re-run them with --retry-failed)" if kept else "")
          + f" | jobs {jobs}, " + (f"GPUs {gpus}, " if gpus else "") + f"{envs[0]['OMP_NUM_THREADS']} thread"
          + ("s" if envs[0]["OMP_NUM_THREADS"] != "1" else "") + " each",
          flush=True)

    from tqdm import tqdm
    tqdm.monitor_interval = 0          # no monitor thread: trials are forked with a preexec function
    bar = tqdm(total=len(trials), initial=n_done, unit="trial", disable=not sys.stderr.isatty(),
               dynamic_ncols=True)
    finished = [0]

    def on_finish(trial):
        finished[0] += 1
        bar.update(1)
        value = objective(trial.summary, args.metric) if trial.status == "completed" else None
        detail = (f"{value:.4f} at epoch {trial.summary['best_epoch']}" if value is not None
                  else f"exit {trial.exit_code}: {trial.error.split(' | ')[-1][-200:]}" if trial.status in FAILED
                  else "")
        bar.write(f"[{finished[0]}/{len(todo)}] {trial.status:<11} {trial.id}  {detail}  ({trial.wall_s:.1f}s)")
        sys.stdout.flush()             # one line per trial, also when stdout is a log file
        write_results(out, trials, param_names, args.metric, args.mode)

    try:
        stopped = run_trials(todo, envs, out, args.timeout, args.grace, on_finish)
    finally:
        bar.close()
    rows = write_results(out, trials, param_names, args.metric, args.mode)
    name, mode = objective_name_and_mode(trials, args.metric, args.mode)
    check_metric(trials, args.metric)
    if stopped:
        print(f"stopped by {signal.Signals(stopped).name}: running trials were stopped; "
              f"run the same command to resume", file=sys.stderr)
        return 128 + stopped
    print("\n".join(ranked_table(rows, name, mode)))
    failed = [t for t in trials if t.status in FAILED]
    if failed:
        print(f"{len(failed)} of {len(trials)} trials failed or timed out (see trials.csv and trials/<id>/log.txt)",
              file=sys.stderr)
        return 1
    best = os.path.join(out, "best.json")
    if os.path.exists(best):
        print(f"best: {best}")
    return 0
