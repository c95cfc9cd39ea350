"""A sweep's report: OUT/report.png and report.html from the sweep's --out alone (trials.csv,
summary.csv, folds.csv with --cv, best.json): the objective of every trial against each swept
flag, with --cv the best points' score on each fold, and under them the lines the sweep printed
at the end (the honest report: a score from the data that chose the point says so)."""
import csv
import json
import math
import os

import numpy as np

from ..errors import UserError
from .figure import cell, figure, html_lines, html_table, log_axis, png_bytes, write_files
from .best import best_lines

N_FOLD_POINTS = 6       # points drawn in the per-fold panel (the best first); every one is in the table


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_sweep(out):
    """A sweep's --out -> dict: params (swept flag names), trials, summary and folds (rows of the
    CSV files; folds empty without --cv), best (best.json, or {})."""
    try:
        trials, summary = _rows(os.path.join(out, "trials.csv")), _rows(os.path.join(out, "summary.csv"))
        folds = _rows(os.path.join(out, "folds.csv")) if os.path.isfile(os.path.join(out, "folds.csv")) else []
        best = {}
        if os.path.isfile(os.path.join(out, "best.json")):
            with open(os.path.join(out, "best.json")) as f:
                best = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{out}: cannot read the sweep's results ({e})") from None
    header = list(trials[0]) if trials else []
    params = header[1:header.index("seed")] if "seed" in header else []
    return {"params": params, "trials": trials, "summary": summary, "folds": folds, "best": best}


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def panel_param(ax, trials, param, metric):
    """The objective of each completed trial against one swept flag (numbers on a log axis when
    they span more than a decade; anything else as categories). A mean is marked only at values
    that several trials share (seeds, folds): a line through single trials of a continuous flag
    (--search random, optuna) would read as a trend."""
    done = [t for t in trials if _number(t["objective"]) is not None]
    values = [t[param] for t in done]
    y = [_number(t["objective"]) for t in done]
    numbers = [_number(v) for v in values]
    numeric = bool(values) and all(v is not None for v in numbers)
    cats = list(dict.fromkeys(values))
    x = numbers if numeric else [cats.index(v) for v in values]
    ax.scatter(x, y, s=18, alpha=0.6, label="trials")
    shared = sorted(xi for xi in set(x) if x.count(xi) > 1)
    means = [(xi, np.mean([yi for xj, yi in zip(x, y) if xj == xi])) for xi in shared]
    if means:       # joined by a line only when every value has its mean (a grid with seeds or folds)
        joined = numeric and len(shared) == len(set(x)) > 1
        ax.plot([m[0] for m in means], [m[1] for m in means], "k_-" if joined else "k_", ms=14, lw=0.8,
                label="mean")
    if numeric and min(numbers) > 0 and max(numbers) / min(numbers) > 10:
        log_axis(ax, "x", min(numbers), max(numbers))
    if not numeric:
        ax.set_xlim(-0.5, len(cats) - 0.5)
        ax.set_xticks(range(len(cats)), [c if len(c) < 20 else c[:17] + "..." for c in cats],
                      rotation=30 if len(cats) > 3 else 0, ha="right")
    ax.legend(fontsize=8)
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {param}")


def fold_columns(folds):
    """folds.csv's fold columns ('fold 0', ...), without --nested's 'test j fold i' ones."""
    return [k for k in (folds[0] if folds else {}) if k.startswith("fold ")]


def panel_folds(ax, sweep, metric):
    """--cv: the best points' objective on each validation fold (folds.csv), one marker per point
    and fold, the fold's held-out group under it (leave-one-subject-out)."""
    columns = fold_columns(sweep["folds"])
    groups = (sweep["best"].get("cv") or {}).get("groups", {})
    shown = sweep["folds"][:N_FOLD_POINTS]
    # the point's mean as the terminal's ranked table and summary.csv give it (not re-averaged from
    # folds.csv's rounded cells), in the terminal's format (results.ranked_table)
    means = {r["point"]: _number(r.get("mean")) for r in sweep["summary"]}
    if isinstance(sweep["best"].get("mean"), float):       # best.json's unrounded one, where it has it
        means[sweep["best"].get("point")] = sweep["best"]["mean"]
    for i, row in enumerate(shown):
        values = [_number(row[c]) for c in columns]
        x = [j + (i - (len(shown) - 1) / 2) * 0.08 for j, v in enumerate(values) if v is not None]
        y = [v for v in values if v is not None]
        m = means.get(row["point"])
        m = np.mean(y) if m is None and y else m
        mean = f"mean {m:.4f}" if m is not None else "no fold completed"
        ax.plot(x, y, "o", ms=6 if i == 0 else 4, label=f"{row['point']} ({mean})")
    labels = []
    for c in columns:
        k = c.split()[1]
        held = groups.get(k, [])
        labels.append(f"{k}\ngroup {held[0]}" if len(held) == 1 else k)
    ax.set_xticks(range(len(columns)), labels, fontsize=8)
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_xlabel("validation fold")
    ax.set_ylabel(metric)
    more = len(sweep["folds"]) - len(shown)
    ax.set_title(f"{metric} per fold (best {len(shown)} points{'; all in folds.csv' if more else ''})")
    ax.legend(fontsize=8)


def _trial_config(out, trial):
    """The config.json of a trial's run (where the sweep wrote it, or under OUT if it moved), or {}."""
    for run_dir in (trial.get("run_dir"), os.path.join(out, "trials", trial["id"], "run")):
        path = os.path.join(run_dir or "", "config.json")
        if run_dir and os.path.isfile(path):
            try:
                with open(path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}
    return {}


def sweep_title(out, sweep, swept):
    """The report's title: the sweep, its task, data and (when not swept) model."""
    done = [t for t in sweep["trials"] if _number(t["objective"]) is not None]
    c = _trial_config(out, done[0]) if done else {}
    resolved = c.get("resolved") or {}
    title = f"biosig sweep {os.path.basename(os.path.abspath(out))}"
    if c:
        task = (resolved.get("task") or {}).get("name", c.get("task"))
        shape = resolved.get("data_shape")
        title += f": {task} on {os.path.basename(str(c.get('x')))}" + (f" {tuple(shape)}" if shape else "")
        if "model" not in swept:
            title += f", {c.get('model')}"
    return title


def sweep_report(out):
    """Write OUT/report.png and report.html for a sweep; returns their paths."""
    sweep = read_sweep(out)
    params, trials, summary, best = sweep["params"], sweep["trials"], sweep["summary"], sweep["best"]
    if not any(_number(t["objective"]) is not None for t in trials):
        raise UserError(f"{out}: no trial has completed yet; nothing to plot")
    metric = f"{best.get('metric', 'objective')}" + (f" ({best['mode']})" if best.get("mode") else "")
    swept = [p for p in params if len({t[p] for t in trials}) > 1] or params[:1]
    if not swept:
        swept = ["seed"]
    panels = [(p, (lambda p: lambda ax, data: panel_param(ax, data["trials"], p, metric))(p), False) for p in swept]
    if fold_columns(sweep["folds"]):
        panels.append(("folds", lambda ax, data: panel_folds(ax, data, metric), False))
    title = sweep_title(out, sweep, swept)
    done = sum(_number(t["objective"]) is not None for t in trials)
    counted = (f" ({done} of {len(trials)} trials completed; the others are not shown)" if done < len(trials)
               else f" ({len(trials)} trials)")
    lines = best_lines(best) if best.get("report") else []
    # under the picture, the honest report; the per-fold scores are a panel of their own
    footer = best_lines({**best, "cv": None}) if lines and len(panels) > len(swept) else lines
    png = png_bytes(figure(panels, sweep, title + counted, footer=footer))
    sections = []
    if best:
        sections.append(("Best point", html_table(None, [
            ("point", best.get("point")), (best.get("metric", "objective"),
                                           f"{cell(best.get('mean'))} ± {cell(best.get('std'))} (n={best.get('n')})"),
            ("command", best.get("command"))], left=2) + html_lines(lines)))
    if summary:
        sections.append(("Ranked points (summary.csv)", html_table(list(summary[0]), [list(r.values()) for r in summary],
                                                                   left=2 + len(params))))
    if sweep["folds"]:
        sections.append(("Per fold (folds.csv)", html_table(list(sweep["folds"][0]),
                                                            [list(r.values()) for r in sweep["folds"]],
                                                            left=1 + len(params))))
    sections.append(("Trials (trials.csv)", html_table(list(trials[0]), [list(t.values()) for t in trials],
                                                       left=1 + len(params))))
    return write_files(out, png, title, sections)
