"""A sweep's results: each trial's objective, the per-point summary over seeds, trials.csv,
summary.csv, best.json (with a train.py command that re-runs the best point) and a ranked table."""
import csv
import os
import shlex

import numpy as np

from ..atomic import atomic_path, write_json
from ..errors import UserError
from ..report.best import best_lines  # noqa: F401 -- the sweep prints them; biosig/report/sweep.py reads them too
from .cv import nested_selection, per_fold, test_metric
from .flags import render
from .trials import FAILED


def objective(summary, metric):
    """The number a trial is ranked by. metric None: train.py's best monitored value
    (summary['best']). Else a top-level number of summary.json ('wall_s', ...), a column of the
    best epoch's metrics row ('val_f1', as in metrics.jsonl), or a number of the task's report
    at the best epoch ('f1')."""
    if summary is None:
        return None
    if metric is None or metric == summary.get("monitor"):
        value = summary.get("best")
    elif metric in summary:
        value = summary[metric]
    elif metric in (summary.get("best_row") or {}):
        value = summary["best_row"][metric]
    else:
        value = (summary.get("best_metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def objective_name_and_mode(trials, metric, mode):
    """(metric name, 'min' | 'max'): as given, else what train.py monitored, else the task's
    direction for it (summary.json "monitors"), else a guess from the name (losses and wall_s
    are minimized, anything else maximized)."""
    summaries = [t.summary for t in trials if t.summary is not None]
    monitor = summaries[0]["monitor"] if summaries else None
    name = metric or monitor or "objective"
    if mode is None:
        if summaries and name == monitor:
            mode = summaries[0]["mode"]
        elif summaries and name in (summaries[0].get("monitors") or {}):     # the task's own, e.g. val_mae
            mode = summaries[0]["monitors"][name]
        else:
            mode = "min" if ("loss" in name or name == "wall_s") else "max"
    return name, mode


def planned_objective(trials, metric, mode):
    """(name, mode) of the objective before any trial has run (a study needs its direction):
    --metric or what the first trial's train.py will monitor, and its task's direction for it."""
    from ..tasks import TASKS
    from ..training.resolve import resolve_monitor
    parsed = trials[0].train_args
    monitor, monitor_mode = resolve_monitor(parsed)     # without validation windows: train_loss
    name = metric or monitor
    if mode is None:
        monitors = TASKS[parsed.task].monitors if isinstance(parsed.task, str) else {}
        mode = (monitor_mode if name == monitor else monitors.get(name)) or (
            "min" if ("loss" in name or name == "wall_s") else "max")
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
               "failed": sum(t.status in FAILED for t in group), "pruned": sum(t.status == "pruned" for t in group),
               "trials": group,
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


def test_score(trial, name):
    """The trial's score on its test data (train.py --x-test or --test-fold) in the objective's
    terms (val_acc -> the test's acc), or None."""
    test = (trial.summary or {}).get("test") or {}
    value = test.get(test_metric(name))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def write_results(out, trials, param_names, metric, mode, cv=None):
    """trials.csv, summary.csv, folds.csv (with --cv) and (once a trial completed) best.json.
    Returns summarize()'s rows."""
    name, mode = objective_name_and_mode(trials, metric, mode)
    folds = ["fold", "test_fold"] if cv else []
    write_csv(os.path.join(out, "trials.csv"),
              ["id", *param_names, "seed", *folds, "status", "exit_code", "objective", "test", "best_epoch",
               "wall_s", "samples_per_s", "run_dir", "error"],
              [[t.id, *[render(t.params[p]) if p in t.params else "" for p in param_names], t.seed,
                *([_cell(t.fold), _cell(t.test_fold)] if cv else []), t.status,
                _cell(t.exit_code), _cell(objective(t.summary, metric) if t.status == "completed" else None),
                _cell(test_score(t, name)),
                _cell((t.summary or {}).get("best_epoch")), _cell(round(t.wall_s, 2) if t.wall_s else None),
                _cell((t.summary or {}).get("train_samples_per_s")), t.run_dir, t.error] for t in trials])
    rows = summarize(trials, metric, mode)
    value_of = lambda t: objective(t.summary, metric)       # noqa: E731
    if cv:      # one row per point and fold: the objective's mean over seeds
        table = per_fold(trials, value_of)
        keys = sorted({k for cells in table.values() for k in cells}, key=_fold_order)
        write_csv(os.path.join(out, "folds.csv"),
                  ["point", *param_names, *[f"fold {f}" if o is None else f"test {o} fold {f}" for o, f in keys]],
                  [[r["point"], *[render(r["params"][p]) if p in r["params"] else "" for p in param_names],
                    *[_cell(table.get(r["point"], {}).get(k)) for k in keys]] for r in rows])
    write_csv(os.path.join(out, "summary.csv"),
              ["rank", "point", *param_names, "n", "failed", "pruned", "mean", "std", "min", "max"],
              [[rank, r["point"], *[render(r["params"][p]) if p in r["params"] else "" for p in param_names],
                r["n"], r["failed"], r["pruned"], *[_cell(r[k]) for k in ("mean", "std", "min", "max")]]
               for rank, r in enumerate(rows, 1)])
    if rows and rows[0]["n"]:
        top = rows[0]
        done = [t for t in top["trials"] if t.status == "completed" and objective(t.summary, metric) is not None]
        pick = min if mode == "min" else max
        trial = pick(done, key=lambda t: objective(t.summary, metric))
        argv = trial.base_argv + ["--save", "best.pt"]   # a new run dir under ./runs, as train.py does
        if cv:      # the point trained on all the windows (with a validation split), not on one fold
            argv = without(argv, ("--folds", "--fold", "--test-fold"))
        best = {
            "metric": name, "mode": mode, "point": top["point"], "params": top["params"],
            "n": top["n"], "mean": top["mean"], "std": top["std"],
            "trial": trial.id, "seed": trial.seed, "objective": objective(trial.summary, metric),
            "checkpoint": trial.checkpoint, "run_dir": trial.run_dir,
            "argv": argv, "command": shlex.join(argv)}
        if cv:
            cells = per_fold(top["trials"], value_of).get(top["point"], {})
            best["cv"] = {**cv, "folds": {f"{k[1]}" if k[0] is None else f"test {k[0]} fold {k[1]}": cells[k]
                                          for k in sorted(cells, key=_fold_order)}}
            held = {}       # which groups each validation fold held out (leave-one-subject-out: one each)
            for t in top["trials"]:
                ids = (((t.summary or {}).get("split") or {}).get("val") or {}).get("group_ids")
                if ids is not None and t.test_fold is None:
                    held[str(t.fold)] = ids
            if held:
                best["cv"]["groups"] = dict(sorted(held.items(), key=lambda kv: int(kv[0])))
        best["report"] = honest_report(trials, top, name, mode, value_of, cv)
        write_json(os.path.join(out, "best.json"), best)
    return rows


def without(argv, flags):
    """argv without the given flags and their values."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in flags:
            skip = True
        elif token.split("=", 1)[0] not in flags:
            out.append(token)
    return out


def _fold_order(key):
    """(test_fold, fold) keys in order, test_fold None first."""
    return (-1 if key[0] is None else key[0], key[1])


def honest_report(trials, top, name, mode, value_of, cv):
    """What a sweep can report for its best point without reporting the number that chose it:
    with --cv K --nested, each outer fold's test score of the point chosen without it; with test
    data in every trial (--x-test), the chosen point's mean test score; else only the selection
    score, marked as from the same data (optimistic)."""
    on = (f"the validation folds of --cv {'loso' if cv['loso'] else cv['k']}" if cv else
          "the training data (no validation windows)" if name.startswith("train_") else "the validation data")
    if cv and cv["nested"]:
        outer = nested_selection(trials, value_of, lambda t: test_score(t, name), mode)
        tests = [o["test"] for o in outer if o["test"] is not None]
        return {"selected_on": "the inner validation folds, never the outer test fold",
                "score": float(np.mean(tests)) if tests else None,
                "std": float(np.std(tests, ddof=1)) if len(tests) > 1 else None,
                "metric": f"test {test_metric(name)}", "reported_on": "each outer fold, held out from selection",
                "same_data_as_selection": False, "outer": outer}
    tests = [s for s in (test_score(t, name) for t in top["trials"] if t.status == "completed") if s is not None]
    if tests:
        return {"selected_on": on, "score": float(np.mean(tests)),
                "std": float(np.std(tests, ddof=1)) if len(tests) > 1 else None, "metric": f"test {test_metric(name)}",
                "reported_on": "the trials' test data (--x-test / --test-fold)", "same_data_as_selection": False}
    return {"selected_on": on, "score": top["mean"], "std": top["std"], "metric": name, "reported_on": on,
            "same_data_as_selection": True,
            "note": "optimistic: this score chose the point; report a test score instead (test data after --, "
                    "--cv K --nested, or --refit-seeds with --x-test)"}


def check_metric(trials, metric):
    """--metric must name a number in the completed trials' summary.json."""
    done = [t for t in trials if t.status == "completed"]
    if metric and done and all(objective(t.summary, metric) is None for t in done):
        keys = {k for t in done for part in ("best_row", "best_metrics")
                for k, v in (t.summary.get(part) or {}).items() if isinstance(v, (int, float)) and k != "epoch"}
        raise UserError(f"--metric {metric}: not in the trials' summary.json (the best epoch has "
                        f"{', '.join(sorted(keys))}; top-level numbers such as best, wall_s also work)")


def ranked_table(rows, name, mode, limit=10):
    """The best points as aligned text lines."""
    width = max([len(r["point"]) for r in rows[:limit]] + [5])
    title = f"{name} ({mode})" if any(r["n"] for r in rows) else name
    lines = [f"{'rank':>4}  {'point':<{width}}  {'n':>3}  {title:<24}  failed"]
    for rank, r in enumerate(rows[:limit], 1):
        if r["mean"] is None:
            value = "- (pruned)" if r["pruned"] else "-"
        elif r["std"] is None:
            value = f"{r['mean']:.4f}"
        else:
            value = f"{r['mean']:.4f} ± {r['std']:.4f}"
        lines.append(f"{rank:>4}  {r['point']:<{width}}  {r['n']:>3}  {value:<24}  {r['failed']}")
    if len(rows) > limit:
        lines.append(f"      ... {len(rows) - limit} more in summary.csv")
    return lines
