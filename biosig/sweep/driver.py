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
import os
import shlex
import shutil
import signal
import sys
import time

from ..errors import UserError
from ..atomic import write_json
from .flags import (absolute_paths, absolute_point, check_paths_exist, check_train_flags, is_number, strict_parser,
                    train_options)
from .grid import check_grid_flags, expand, load_grid
from .processes import run_trials, trial_envs
from .collect import array_task, report
from .cv import setup as cv_setup
from .outdir import acquire_lock, check_out_dir, trial_dirs
from .results import check_metric, objective, write_results
from .space import check_space, corner_points, random_points, representative
from .search import check_array_modes, check_storage_flags, study_members, trial_source
from .storage import hidden_argv, is_storage_error, local, lost, open_storage, parse
from .study import import_optuna
from .workers import Locks
from . import refit, slurm
from .trials import FAILED, build_trials, load_state, move_aside


def one_point_grids(points):
    """[{flag: value}] -> grids of one point each, for expand() (which makes file values absolute)."""
    return [{flag: [value] for flag, value in point.items()} for point in points]


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


def check_flags(args, train_flags, options):
    """sweep.py's flags, the grid file and train.py's flags after -- (`options`: train.py's, by
    option string), checked before anything is written -> the grids."""
    if not train_flags:
        raise UserError("give train.py's flags after --, e.g. -- --x X.npy --y y.npy --epochs 20")
    check_train_flags(train_flags, options)
    if args.seeds and any(options.get(t.split("=", 1)[0]) is options["--seed"] for t in train_flags):
        raise UserError("train.py flags after --: --seed conflicts with --seeds (each trial gets its seed)")
    grids = load_grid(args.grid)
    check_space(grids, args.search, args.grid)
    if args.search != "grid" and not args.trials:
        raise UserError(f"--search {args.search} needs --trials N (how many points to try)")
    if args.search == "grid" and args.trials:
        raise UserError("--trials goes with --search random or optuna (a grid runs every point; --sample K "
                        "runs K of them)")
    if args.search != "grid" and args.sample:
        raise UserError(f"--sample draws grid points; with --search {args.search}, --trials N says how many")
    check_grid_flags(representative(grids), options, args.grid)
    check_storage_flags(args)
    if args.search == "optuna" or args.prune:
        import_optuna()             # before anything is written
    if args.sbatch and not args.emit_sbatch:
        raise UserError("--sbatch gives #SBATCH options to the script --emit-sbatch FILE writes; give --emit-sbatch")
    if args.emit_sbatch:
        folder = os.path.dirname(os.path.abspath(args.emit_sbatch))
        if not os.path.isdir(folder):
            raise UserError(f"--emit-sbatch {args.emit_sbatch}: directory {folder} does not exist")
    given_after = {options[t.split("=", 1)[0]].dest for t in train_flags if t.startswith("-") and not is_number(t)}
    for grid in grids:
        for flag in grid:
            if options["--" + flag].dest in given_after:
                raise UserError(f"{args.grid}: '{flag}' is in the grid and also after --; give it in one place")
    if args.metric is None and any("monitor" in grid for grid in grids):
        raise UserError(f"{args.grid}: the grid varies 'monitor', so the trials' best values are not "
                        f"comparable; choose the objective with --metric")
    return grids


def run_sweep(args, train_flags, train_parser, train_script):
    """The sweep as `args` (sweep.py's options) say, with `train_flags` (after --) shared by every
    trial. Returns the exit status: 0, 1 if a trial failed, 128 + signal if stopped."""
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds {' '.join(map(str, args.seeds))}: a seed is repeated")
    gpus, jobs = parse_gpus(args.gpus, args.jobs)
    options = train_options(train_parser)
    grids = check_flags(args, train_flags, options)

    out = os.path.abspath(args.out)
    shared = absolute_paths(train_flags, options)
    check_paths_exist(shared, options)
    cv_flags, folds, cv = cv_setup(args, shared, grids, options, train_parser)
    shared = shared + cv_flags
    refit.check(args, strict_parser(train_parser, "train.py flags after --").parse_args(shared))
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    if not args.dry_run and (not launcher or shutil.which(launcher[0]) is None):   # a dry run may be on a login node
        raise UserError(f"--launcher {args.launcher!r}: {launcher[0] if launcher else 'an empty command'} "
                        f"is not a program on PATH")
    prefix = launcher + [os.path.abspath(train_script)]
    if args.search == "random":
        points = expand(one_point_grids(random_points(grids[0], args.trials, args.sample_seed)), options=options)
    if args.search != "grid":          # every bound, not only the values drawn
        build_trials(expand(one_point_grids(corner_points(grids)), options=options),
                     args.seeds, shared, options, train_parser, out, prefix, args.grid, folds)
    if args.search == "optuna":         # asked as the sweep goes
        points = []
    elif args.search == "grid":
        points = expand(grids, args.sample, args.sample_seed, args.grid, options)
    trials = build_trials(points, args.seeds, shared, options, train_parser, out, prefix, args.grid, folds)
    param_names = list(dict.fromkeys(flag for grid in grids for flag in grid))

    def build(point):
        """A point's member trials (its folds and seeds), their state read from OUT."""
        members = build_trials([absolute_point(point, options)], args.seeds, shared, options, train_parser, out,
                               prefix, args.grid, folds)
        for m in members:
            load_state(m)
        return members

    one_task = args.trial_index is not None or args.collect       # an array task, or the collector
    array = args.emit_sbatch or one_task
    storage = parse(args.storage, out, args.study_name) if args.storage else local(out)
    check_array_modes(args, storage, array)
    replaced = check_out_dir(out, shared)
    if args.dry_run:
        return dry_run(args, out, trials, replaced, lambda: build(corner_points(grids)[0])[0], len(folds or [None]))

    if one_task and not os.path.exists(os.path.join(out, "sweep.json")):
        raise UserError(f"--out {out}: no sweep here (no sweep.json); --emit-sbatch, or a sweep, starts one")
    if (one_task or storage.shared) and replaced is not None:
        raise UserError(f"--out {out}: was swept with other train.py flags ('{shlex.join(replaced)}'); "
                        f"give the command the array was emitted with")
    if args.search == "optuna" and storage.shared:
        open_storage(storage, import_optuna())       # one line now if it does not answer, before anything is written
    try:
        os.makedirs(out, exist_ok=True)
        lock = acquire_lock(out, shared=one_task or storage.shared)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the sweep directory or its lock ({e.strerror})") from None
    try:
        if one_task:
            if args.search == "optuna":         # the study's points, run by any worker
                trials = study_members(args, out, storage, grids, trials, build)
            return array_task(args, out, trials, param_names, gpus, cv)
        warm = None if args.launcher or args.no_warm_start else os.path.abspath(train_script)
        status = _sweep(args, out, grids, trials, shared, param_names, jobs, gpus, warm, cv, build, storage)
        if args.refit_seeds and status in (0, 1) and os.path.exists(os.path.join(out, "best.json")):
            status = _refit(args, out, status, shared, options, train_parser, prefix, trial_envs(jobs, gpus), warm)
        return status
    finally:
        os.close(lock)


def _refit(args, out, status, *how):
    """--refit-seeds once the search is done -> the exit status. Workers of a shared study: the
    first to end refits (the refit's trials resume like any), the others need not."""
    one = Locks(out)
    if not one.take("refit"):
        print(f"refit: another worker is refitting the best point into {out}/refit.json")
        return status
    try:
        refit_status, lines = refit.refit(args, out, *how)
    finally:
        one.release_all()
    print("\n".join(lines))
    return max(status, refit_status) if refit_status < 128 else refit_status


def dry_run(args, out, trials, replaced, example, n_folds):
    """--dry-run: print each trial's command and what a run would do with it -> exit status 0.
    replaced: the flags OUT was swept with when every trial would start afresh; example: a
    function giving one trial of a point (--search optuna: its points are asked as it goes)."""
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
    if args.search == "optuna":
        print(f"# --search optuna: up to {args.trials} points proposed by TPE from {args.grid} as the sweep "
              f"goes, each run as {n_folds * len(args.seeds or [None])} trial(s) like")
        print(shlex.join(example().argv))
    return 0


def _sweep(args, out, grids, trials, shared, param_names, jobs, gpus, warm, cv, build, storage):
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
        "timeout": args.timeout, "cv": cv, "search": args.search, "trials": args.trials, "prune": args.prune,
        "n_trials": len(trials), "argv": hidden_argv(sys.argv, storage),
        "storage": storage.shown if storage.shared else None, "study": storage.study if storage.shared else None,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for trial in trials:
        load_state(trial)
    check_metric(trials, args.metric)       # before running anything, when finished trials can tell
    retry = FAILED if args.retry_failed else ()
    todo = [t for t in trials if t.status in ("pending", "incomplete") or t.status in retry]
    if args.emit_sbatch and args.search == "optuna":
        trial_source(args, out, grids, trials, todo, build, storage)       # the study, made or checked now
        slurm.emit_workers(os.path.abspath(args.emit_sbatch), out, args.workers, args.sbatch, storage)
        return 0
    if args.emit_sbatch:
        slurm.emit(os.path.abspath(args.emit_sbatch), trials, todo, out, args.sbatch)
        return 0
    kept = sum(t.status in FAILED for t in trials) if not args.retry_failed else 0
    envs = trial_envs(jobs, gpus)
    source, n_done, n_todo, counts = trial_source(args, out, grids, trials, todo, build, storage)
    print(f"sweep {out}: {counts}"
          + (f", {kept} failed kept (re-run them with --retry-failed)" if kept else "")
          + (f", {pruned} pruned" if (pruned := sum(t.status == "pruned" for t in trials)) else "")
          + f" | jobs {jobs}, " + (f"GPUs {gpus}, " if gpus else "") + f"{envs[0]['OMP_NUM_THREADS']} thread"
          + ("s" if envs[0]["OMP_NUM_THREADS"] != "1" else "") + " each",
          flush=True)

    from tqdm import tqdm
    tqdm.monitor_interval = 0          # no monitor thread: trials are forked with a preexec function
    bar = tqdm(total=n_done + n_todo, initial=n_done, unit="trial", disable=not sys.stderr.isatty(),
               dynamic_ncols=True)
    finished = [0]

    def on_finish(trial):
        if trial.status == "completed":     # a --metric no trial has stops the sweep at its first trial
            check_metric(trials, args.metric)
        finished[0] += 1
        bar.update(1)
        value = objective(trial.summary, args.metric) if trial.status == "completed" else None
        detail = (f"{value:.4f} at epoch {trial.summary['best_epoch']}" if value is not None
                  else f"exit {trial.exit_code}: {trial.error.split(' | ')[-1][-200:]}" if trial.status in FAILED
                  else "")
        took = (f"{trial.wall_s:.1f}s" if len(trial.attempts_s) < 2 else
                f"{trial.attempts_s[-1]:.1f}s, {trial.wall_s:.1f}s over {len(trial.attempts_s)} attempts")
        count = f"{finished[0]} here" if storage.shared else f"{finished[0]}/{n_todo}"    # others run the rest
        bar.write(f"[{count}] {trial.status:<11} {trial.id}  {detail}  ({took})")
        sys.stdout.flush()             # one line per trial, also when stdout is a log file
        write_results(out, trials, param_names, args.metric, args.mode, cv)

    try:
        stopped = _run(source, storage, envs, out, args.timeout, args.grace, on_finish, warm)
    finally:
        bar.close()
    if stopped:
        write_results(out, trials, param_names, args.metric, args.mode, cv)
        print(f"stopped by {signal.Signals(stopped).name}: running trials were stopped; " + (
              "their points went back to the study, for the other workers; the same command rejoins it"
              if storage.shared else "run the same command to resume"), file=sys.stderr)
        return 128 + stopped
    return report(args, out, trials, param_names, cv)




def _run(source, storage, *args):
    """run_trials(source, *args) -> the signal that stopped it, or None. A study's worker hands its
    running points back when stopped, and reads every worker's points for the tables when done;
    a storage that stops answering is one line (the trials were stopped on the way out)."""
    try:
        stopped = run_trials(source, *args)
        if stopped:
            source_release(source, storage)
        elif hasattr(source, "record_all"):
            source.record_all()
        return stopped
    except Exception as e:
        if not hasattr(source, "record_all") or not is_storage_error(e, storage):
            raise
        raise lost(storage, e) from None
    finally:
        if hasattr(source, "close"):
            source.close()


def source_release(source, storage):
    """A stopped worker hands its running points back to the study, if the study still answers."""
    try:
        if hasattr(source, "release"):
            source.release()
    except Exception as e:      # noqa: BLE001 -- the storage is gone too: the heartbeat frees them later
        if not is_storage_error(e, storage):
            raise
