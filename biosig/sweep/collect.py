"""A sweep's job-array modes and its end: --trial-index I runs trial I alone (one task of the
array slurm.py emits), --collect only gathers the results, and report() -- also the end of a
sweep run here -- writes the tables, prints the ranked points and the best, and gives the exit
status.
"""
import json
import os
import signal
import sys

from .processes import Queue, run_trials, trial_envs
from .results import best_lines, check_metric, objective_name_and_mode, ranked_table, write_results
from . import slurm
from .trials import FAILED, load_state


def array_task(args, out, trials, param_names, gpus, cv):
    """--trial-index I: run trial I alone (a job-array task); --collect: only the results."""
    for trial in trials:
        load_state(trial)
    if args.trial_index is not None:
        trial, why = slurm.pick(trials, args.trial_index, args.retry_failed)
        if trial is None:
            print(f"sweep {out}: {why}; nothing to do")
            return 0
        print(f"sweep {out}: trial {args.trial_index} of {len(trials)}: {trial.id}", flush=True)
        stopped = run_trials(Queue([trial]), trial_envs(1, gpus), out, args.timeout, args.grace,
                             lambda t: print(f"{t.status} {t.id} ({t.wall_s:.1f}s)"
                                             + (f": {t.error.split(' | ')[-1]}" if t.error else ""), flush=True),
                             resume="requeue the array task")
        if stopped:
            print(f"stopped by {signal.Signals(stopped).name}: the array task can be requeued to resume",
                  file=sys.stderr)
            return 128 + stopped
        return 0 if trial.status == "completed" else 1
    return report(args, out, trials, param_names, cv)


def report(args, out, trials, param_names, cv):
    """Write the results, print the ranked table and the best point's report. The exit status:
    1 if a trial failed, else 0."""
    rows = write_results(out, trials, param_names, args.metric, args.mode, cv)
    name, mode = objective_name_and_mode(trials, args.metric, args.mode)
    check_metric(trials, args.metric)
    waiting = sum(t.status in ("pending", "incomplete", "interrupted", "running") for t in trials)
    if waiting:
        print(f"{waiting} of {len(trials)} trials have not finished (pending, running or interrupted)")
    print("\n".join(ranked_table(rows, name, mode)))
    if os.path.exists(os.path.join(out, "best.json")):
        with open(os.path.join(out, "best.json")) as f:
            print("\n".join(best_lines(json.load(f))))
    if not args.no_report and any(t.status == "completed" for t in trials):
        from ..report import run
        missing = run.matplotlib_missing()
        print(missing or f"plots: {run.sweep_report(out)[1]} (and report.png)")
    failed = [t for t in trials if t.status in FAILED]
    if failed:
        print(f"{len(failed)} of {len(trials)} trials failed or timed out (see trials.csv and trials/<id>/log.txt)",
              file=sys.stderr)
        return 1
    best = os.path.join(out, "best.json")
    if os.path.exists(best):
        print(f"best: {best}")
    return 0
