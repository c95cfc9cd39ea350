"""Reports with plots: report.png and a self-contained report.html for a run or a sweep.

    python -m biosig.report RUN_DIR        # runs/<run>: what train.py writes at the end of a run
    python -m biosig.report SWEEP_OUT      # a sweep's --out: objective against each swept flag, ranked table
                                           # (biosig/sweep/report.py; what both share: biosig/plots.py)

A run's report is read from its directory alone (config.json, metrics.jsonl, summary.json and,
for tasks with examples, examples.npz): learning curves (train/val loss with the learning rate
on a second axis; the validation metrics with the best epoch marked), and at the best epoch the
confusion matrix with class names and per-class precision/recall/F1 (classification,
segmentation), predicted against true (regression), true and predicted frames of a few windows
(segmentation). The panels follow from what the run recorded, never from the task's name.
The title names the run, its model, task and data: the PNG travels without the page.

matplotlib is optional (pip install matplotlib): without it the report is skipped with one line.
"""
import importlib.util
import json
import os

import numpy as np

from ..errors import UserError
from .figure import STYLES, cell, figure, html_table, legend_below, log_axis
from .figure import png_bytes, write_files

EXAMPLES = "examples.npz"      # what a task's examples() gave for the report, written by the run


def matplotlib_missing():
    """None when matplotlib imports, else the one line that says the report is skipped."""
    if importlib.util.find_spec("matplotlib") is None:
        return "plots: skipped (matplotlib is not installed: pip install matplotlib)"
    return None


# ------------------------------------------------------------------------------------ reading

def _json(path):
    with open(path) as f:
        return json.load(f)


def read_run(run_dir):
    """A run directory -> dict: config, rows (metrics.jsonl, one per epoch), summary (or None
    for a run still going or stopped), examples ({name: array}, maybe empty)."""
    config_path, metrics_path = os.path.join(run_dir, "config.json"), os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(config_path) or not os.path.isfile(metrics_path):
        raise UserError(f"{run_dir}: not a run directory (no config.json and metrics.jsonl) or a sweep's "
                        f"--out (no trials.csv)")
    try:
        config = _json(config_path)
        with open(metrics_path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        summary_path = os.path.join(run_dir, "summary.json")
        summary = _json(summary_path) if os.path.isfile(summary_path) else None
    except (OSError, ValueError) as e:
        raise UserError(f"{run_dir}: cannot read the run's files ({e})") from None
    examples = {}
    if os.path.isfile(os.path.join(run_dir, EXAMPLES)):
        with np.load(os.path.join(run_dir, EXAMPLES), allow_pickle=False) as z:
            examples = {k: z[k] for k in z.files}
    return {"config": config, "rows": rows, "summary": summary, "examples": examples}


def scored(run):
    """(metrics dict of the task's report, words saying which) for the confusion and example
    panels: validation at the best epoch, else the test set, else (None, None)."""
    s = run["summary"] or {}
    if s.get("best_metrics"):
        return s["best_metrics"], f"validation, best epoch {s.get('best_epoch')}"
    if s.get("test"):
        return s["test"], f"test, epoch {s.get('best_epoch')}"
    return None, None


# ------------------------------------------------------------------------------------ panels

def _epochs(rows, key):
    pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _chosen(run):
    """(epoch, words) of the kept checkpoint: the best epoch, or the last without validation."""
    s = run["summary"] or {}
    if not s.get("best_epoch"):
        return None, None
    last = s.get("monitor") == "train_loss"            # --val-split 0: the last epoch is the model
    return s["best_epoch"], f"{'last' if last else 'best'} epoch {s['best_epoch']}"


def _epoch_axis(ax):
    from matplotlib.ticker import MaxNLocator
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def panel_loss(ax, run):
    rows = run["rows"]
    for key in ("train_loss", "val_loss"):
        x, y = _epochs(rows, key)
        if x:
            ax.plot(x, y, marker="o", ms=3, label=key)
    _epoch_axis(ax)
    ax.set_ylabel("loss")
    ax.set_title("loss (learning rate: dashed, right axis)")
    x, lr = _epochs(rows, "lr")
    lines, labels = ax.get_legend_handles_labels()
    if x:
        ax2 = ax.twinx()
        lines += ax2.plot(x, lr, "--", color="0.4", label="lr")
        labels.append("lr")
        if min(lr) > 0 and max(lr) / min(lr) > 10:
            log_axis(ax2, "y", min(lr), max(lr))
        else:
            ax2.set_ylim(0, max(lr) * 1.1 or 1)
            ax2.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        ax2.tick_params(axis="y", labelsize=7, colors="0.4")
        ax2.set_ylabel("learning rate", color="0.4")
    epoch, words = _chosen(run)
    if epoch:
        lines.append(ax.axvline(epoch, color="0.5", ls=":"))
        labels.append(words)
    legend_below(ax, lines, labels)


def panel_metric(ax, run):
    """The validation metrics per epoch (without validation, the training ones); metrics on
    another scale than [-1, 1] (MAE, RMSE: the targets' units) on a second axis."""
    rows, s = run["rows"], run["summary"] or {}
    monitor = s.get("monitor") or run["config"].get("resolved", {}).get("monitor")
    keys = [k for k in rows[-1] if k.startswith("val_") and k != "val_loss"] if rows else []
    if not keys:                                # no validation: the training metrics
        keys = [k for k in (rows[-1] if rows else {}) if k.startswith("train_") and k not in ("train_loss",
                                                                                          "train_windows")]
    series = [(k, *_epochs(rows, k)) for k in keys]
    series = [(k, x, y) for k, x, y in series if x]
    unit = [(k, x, y) for k, x, y in series if max(abs(v) for v in y) <= 1.0]
    other = [(k, x, y) for k, x, y in series if max(abs(v) for v in y) > 1.0]
    import matplotlib
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    lines, n = [], 0
    for axis, group in ((ax, unit), (ax.twinx() if unit and other else ax, other)):
        if group and group is other:        # MAE, RMSE: in the targets' units, on their own axis
            axis.set_ylabel(", ".join(k for k, _, _ in group) + " (targets' units)")
        for key, x, y in group:
            lines += axis.plot(x, y, STYLES[n % len(STYLES)], color=colors[n % len(colors)], marker="o", ms=3,
                               lw=2.5 if key == monitor else 1.2, label=key + (" (monitored)" if key == monitor else "")
                               + (" (right axis)" if axis is not ax else ""))
            n += 1
    epoch, words = _chosen(run)
    if epoch:
        lines.append(ax.axvline(epoch, color="0.5", ls=":", label=words))
    _epoch_axis(ax)
    if unit:
        ax.set_ylabel("score")
    ax.set_title("metrics per epoch")
    legend_below(ax, lines, [line.get_label() for line in lines])


def class_names(run, k):
    """The task's class names (k of them, or as many as the task has), else their numbers."""
    task = run["config"].get("resolved", {}).get("task") or {}
    k = max(k, task.get("n_classes") or 0)
    names = task.get("class_names")
    return list(names) if names and len(names) == k else [str(i) for i in range(k)]


def panel_confusion(ax, run):
    metrics, which = scored(run)
    cm = np.asarray(metrics["confusion"], dtype=np.float64)
    names = class_names(run, len(cm))
    rate = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(rate, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rate[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cm)), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(len(cm)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion ({which}; colour: row share)")


def panel_per_class(ax, run):
    metrics, which = scored(run)
    per = metrics["per_class"]
    names = class_names(run, len(per["f1"]))
    x = np.arange(len(names))
    for i, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, per[key], width=0.27, label=key)
    ax.set_xticks(x, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_title(f"per class ({which})")
    ax.legend(fontsize=8, ncol=3, loc="upper center")


def panel_scatter(ax, run):
    true, pred = run["examples"]["scatter_true"], run["examples"]["scatter_pred"]
    true, pred = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    for d in range(true.shape[1]):
        ax.scatter(true[:, d], pred[:, d], s=6, alpha=0.5, label=f"target {d}" if true.shape[1] > 1 else None)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    metrics, which = scored(run)
    r2 = (metrics or {}).get("r2")
    ax.set_title(f"predicted vs true ({which}" + (f"; R2 {r2:.3f}" if isinstance(r2, float) else "") + ")")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    if true.shape[1] > 1:
        ax.legend(fontsize=8)


def panel_frames(ax, run):
    from matplotlib.patches import Patch
    true, pred = run["examples"]["frames_true"], run["examples"]["frames_pred"]
    k = int(max(true.max(), pred.max())) + 1
    strips, labels = [], []
    for i in range(len(true)):
        strips += [true[i], pred[i]]
        labels += [f"window {i + 1} true", f"window {i + 1} predicted"]
    cmap, n = ("tab10", 10) if k <= 10 else ("tab20", 20)
    image = ax.imshow(np.stack(strips), aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=n - 0.5)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("frame")
    _, which = scored(run)
    handles = [Patch(color=image.cmap(image.norm(c)), label=name) for c, name in enumerate(class_names(run, k))]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="class")
    ax.set_title(f"true and predicted frames of {len(true)} windows ({which.split(',')[0]})")


def run_panels(run):
    """[(title, function, wide)] for what this run recorded."""
    metrics, _ = scored(run)
    panels = [("loss", panel_loss, False), ("metrics", panel_metric, False)]
    if metrics and "confusion" in metrics:
        panels.append(("confusion", panel_confusion, False))
    if metrics and "per_class" in metrics:
        panels.append(("per class", panel_per_class, False))
    if "scatter_true" in run["examples"]:
        panels.append(("predicted vs true", panel_scatter, False))
    if "frames_true" in run["examples"]:
        panels.append(("frames", panel_frames, True))
    return panels


# -------------------------------------------------------------------------------- the files

def run_title(run, run_dir):
    """The report's title: the run, its model, task and data (the PNG travels without the page)."""
    c = run["config"]
    resolved = c.get("resolved") or {}
    task = (resolved.get("task") or {}).get("name", c.get("task"))
    data = os.path.basename(str(c.get("x") or "")) or "?"
    shape = resolved.get("data_shape")
    data += f" {tuple(shape)}" if shape else ""
    return f"biosig run {os.path.basename(os.path.abspath(run_dir))}: {c.get('model')}, {task} on {data}"


def run_report(run_dir):
    """Write RUN_DIR/report.png and report.html; returns their paths."""
    run = read_run(run_dir)
    if not run["rows"]:
        raise UserError(f"{run_dir}: the run has no finished epoch yet (metrics.jsonl is empty); nothing to plot")
    c, s = run["config"], run["summary"] or {}
    resolved = c.get("resolved", {})
    title = run_title(run, run_dir)
    facts = [("data", f"{c.get('x')} {tuple(resolved.get('data_shape') or ())} (N, C, F, T)"),
             ("task", (resolved.get("task") or {}).get("name", c.get("task"))),
             ("model", f"{c.get('model')} ({resolved.get('n_params', 0):,} parameters)"),
             ("status", s.get("status", "not finished (no summary.json)")),
             ("best", f"{s.get('monitor')} = {cell(s.get('best'))} at epoch {s.get('best_epoch')}" if s else ""),
             ("epochs", s.get("epochs_run", len(run["rows"]))), ("wall", f"{cell(s.get('wall_s'))} s" if s else ""),
             ("device", f"{resolved.get('device')} (amp {resolved.get('amp')}, world size "
                        f"{resolved.get('world_size')})"),
             ("checkpoint", s.get("checkpoint", c.get("save")))]
    sections = [("Run", html_table(None, facts, left=2))]
    metrics, which = scored(run)
    if metrics:
        flat = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        sections.append((f"Scores ({which})", html_table(["metric", "value"], flat)))
    if s.get("test") and which and not which.startswith("test"):
        flat = [(k, v) for k, v in s["test"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        sections.append(("Scores (test)", html_table(["metric", "value"], flat)))
    keys = list(dict.fromkeys(k for r in run["rows"] for k in r))
    sections.append(("Per epoch (metrics.jsonl)", html_table(keys, [[r.get(k) for k in keys] for r in run["rows"]],
                                                             left=0)))
    png = png_bytes(figure(run_panels(run), run, title + f" ({s.get('status', 'not finished')})"))
    return write_files(run_dir, png, title, sections)


def sweep_report(out):
    """Write OUT/report.png and report.html for a sweep's --out; returns their paths."""
    from .sweep import sweep_report       # here: importing biosig.sweep imports the run, which imports this
    return sweep_report(out)


def write_report(directory):
    """A run's or a sweep's report, by what the directory holds -> the paths written."""
    if os.path.isfile(os.path.join(directory, "trials.csv")):
        return sweep_report(directory)
    return run_report(directory)
