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
import fcntl
import json
import os
import shlex
import shutil
import signal
import sys
import time

from ..errors import UserError
from ..runs import write_json
from .flags import absolute_paths, check_paths_exist, check_train_flags, is_number, train_options
from .grid import check_grid_flags, expand, load_grid
from .processes import run_trials, trial_envs
from .cv import setup as cv_setup
from .results import best_lines, check_metric, objective, objective_name_and_mode, ranked_table, write_results
from .trials import FAILED, build_trials, load_state, move_aside


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
    cv_flags, folds, cv = cv_setup(args, shared, grids, options, train_parser)
    shared = shared + cv_flags
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    if not args.dry_run and (not launcher or shutil.which(launcher[0]) is None):   # a dry run may be on a login node
        raise UserError(f"--launcher {args.launcher!r}: {launcher[0] if launcher else 'an empty command'} "
                        f"is not a program on PATH")
    prefix = launcher + [os.path.abspath(train_script)]
    points = expand(grids, args.sample, args.sample_seed, args.grid, options)
    trials = build_trials(points, args.seeds, shared, options, train_parser, out, prefix, args.grid, folds)
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
        warm = None if args.launcher or args.no_warm_start else os.path.abspath(train_script)
        return _sweep(args, out, grids, trials, shared, param_names, jobs, gpus, warm, cv)
    finally:
        os.close(lock)


def _sweep(args, out, grids, trials, shared, param_names, jobs, gpus, warm, cv):
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
        "timeout": args.timeout, "cv": cv, "n_trials": len(trials), "argv": sys.argv,
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
        write_results(out, trials, param_names, args.metric, args.mode, cv)

    try:
        stopped = run_trials(todo, envs, out, args.timeout, args.grace, on_finish, warm)
    finally:
        bar.close()
    rows = write_results(out, trials, param_names, args.metric, args.mode, cv)
    name, mode = objective_name_and_mode(trials, args.metric, args.mode)
    check_metric(trials, args.metric)
    if stopped:
        print(f"stopped by {signal.Signals(stopped).name}: running trials were stopped; "
              f"run the same command to resume", file=sys.stderr)
        return 128 + stopped
    print("\n".join(ranked_table(rows, name, mode)))
    if os.path.exists(os.path.join(out, "best.json")):
        with open(os.path.join(out, "best.json")) as f:
            print("\n".join(best_lines(json.load(f))))
    failed = [t for t in trials if t.status in FAILED]
    if failed:
        print(f"{len(failed)} of {len(trials)} trials failed or timed out (see trials.csv and trials/<id>/log.txt)",
              file=sys.stderr)
        return 1
    best = os.path.join(out, "best.json")
    if os.path.exists(best):
        print(f"best: {best}")
    return 0
