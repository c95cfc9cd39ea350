"""Run and sweep reports: report.png and a self-contained report.html that a real browser renders,
panels by what the run recorded, python -m biosig.report, and one line when matplotlib is missing."""
import html
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ENV, ROOT, assert_user_error, make_windows, run, run_here

pytest.importorskip("matplotlib")
TCN = ["--model", "tcn", "--batch", "32", "--lr", "3e-3"]
DARKEST_BLUE = np.array([8, 48, 107]) / 255       # matplotlib's "Blues" at 1: a confusion matrix's full cells


def chromium_screenshot(html, png):
    """Open `html` in headless Chromium and save what it shows as `png` -> the image (H, W, 3)."""
    import matplotlib.image
    proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={png}.profile", "--hide-scrollbars",
                           "--window-size=1280,1400", f"--screenshot={png}", f"file://{html}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and os.path.exists(png), proc.stderr[-2000:]
    return matplotlib.image.imread(png)[..., :3]


@pytest.mark.slow
def test_a_run_writes_a_report_and_a_browser_renders_it(tmp_path):
    X, y = make_windows(n=160, t=32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "names.json").write_text(json.dumps(["rest", "left", "right"]))
    proc = run_here("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", *TCN, "--epochs", "3",
                    "--class-names", tmp_path / "names.json", "--save", tmp_path / "c.pt", "--run-dir", tmp_path / "run",
                    report=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "run"
    assert f"plots: {run_dir / 'report.html'} (and report.png)" in proc.stdout
    png = (run_dir / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") > 800     # IHDR width
    page = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page   # self-contained
    assert "val_f1" in page and "confusion" not in page.split("<h2>")[0]    # per-epoch table; the plot is an image

    from biosig.report import run as report
    panels = [name for name, _, _ in report.run_panels(report.read_run(str(run_dir)))]
    assert panels == ["loss", "metrics", "confusion", "per class"]

    if shutil.which("chromium") is None:
        pytest.skip("no chromium (.ci/run installs Debian's chromium package)")
    shown = chromium_screenshot(run_dir / "report.html", tmp_path / "shown.png")
    broken = tmp_path / "broken.html"      # the same page with its image cut: what a failed render shows
    broken.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,AAAA"))
    cut = chromium_screenshot(broken, tmp_path / "cut.png")

    def confusion_pixels(image):
        return int((np.abs(image - DARKEST_BLUE).max(-1) < 0.03).sum())
    assert confusion_pixels(shown) > 2000 and confusion_pixels(cut) == 0, (confusion_pixels(shown),
                                                                            confusion_pixels(cut))


def test_regression_and_segmentation_reports_show_their_examples(tmp_path):
    from biosig.report import run as report
    from biosig.tasks import Regression, Segmentation
    for task, cls, panel in (("regression", Regression, "predicted vs true"), ("segmentation", Segmentation, "frames")):
        X, y = cls.example_data(120, 3, 1, 32, seed=0)
        np.save(tmp_path / f"X_{task}.npy", X)
        np.save(tmp_path / f"y_{task}.npy", y)
        run_dir = tmp_path / task
        proc = run_here("train.py", "--task", task, "--x", tmp_path / f"X_{task}.npy", "--y", tmp_path / f"y_{task}.npy",
                        *TCN, "--epochs", "2", "--save", tmp_path / f"{task}.pt", "--run-dir", run_dir, report=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with np.load(run_dir / "examples.npz", allow_pickle=False) as z:
            shown = {k: z[k] for k in z.files}
        true, pred = (shown["scatter_true"], shown["scatter_pred"]) if task == "regression" else (
            shown["frames_true"], shown["frames_pred"])
        # regression: every validation window (20%); segmentation: 3 windows' frames
        assert true.shape == pred.shape == ((24, y.reshape(len(y), -1).shape[1]) if task == "regression" else (3, 32)), true.shape
        panels = [name for name, _, _ in report.run_panels(report.read_run(str(run_dir)))]
        assert panel in panels and (run_dir / "report.png").stat().st_size > 10000


@pytest.mark.slow
def test_sweep_report_and_python_m_biosig_report(tmp_path, dataset):
    (tmp_path / "grid.json").write_text(json.dumps({"lr": [0.003, 0.0003]}))
    out = tmp_path / "sw"
    proc = run("sweep.py", "--grid", tmp_path / "grid.json", "--out", out, "--", "--x", dataset["x"], "--y",
               dataset["y"], *TCN[:2], "--epochs", "1", report=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"plots: {out / 'report.html'} (and report.png)" in proc.stdout
    page = (out / "report.html").read_text()
    assert "Ranked points" in page and "0.003" in page and "data:image/png;base64," in page
    assert "on the validation data -- the same data that chose the point: optimistic" in page   # as printed
    assert not list(out.glob("trials/*/run/report.png"))         # trials write none: the sweep writes one

    (out / "report.png").unlink()
    trial_run = next(out.glob("trials/*/run"))
    made = run_here("biosig.report", out, trial_run)
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.split() == [str(out / "report.png"), str(out / "report.html"), str(trial_run / "report.png"),
                                   str(trial_run / "report.html")]


def test_python_m_biosig_report_refuses_what_is_not_a_run_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("a directory, but not a run's")
    for bad, needle in ((tmp_path / "nowhere", "no such directory"), (tmp_path, "not a run directory")):
        proc = run_here("biosig.report", bad)
        assert_user_error(proc, str(bad), needle)


def test_without_matplotlib_the_run_says_so_in_one_line_and_keeps_everything_else(tmp_path, dataset):
    blocked = ("import sys, runpy; sys.modules['matplotlib'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", blocked, os.path.join(ROOT, "train.py"), "--x", dataset["x"],
                           "--y", dataset["y"], *TCN, "--epochs", "1", "--save", str(tmp_path / "c.pt"),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("plots")]
    assert lines == ["plots: skipped (matplotlib is not installed: pip install matplotlib)"]
    assert (tmp_path / "run" / "summary.json").exists() and not (tmp_path / "run" / "report.png").exists()
    blocked = ("import sys, runpy; sys.modules['matplotlib'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_module('biosig.report', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", blocked, "report", str(tmp_path / "run")],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert_user_error(proc, "needs matplotlib", "pip install matplotlib")


# ------------------------------------------------------------- what a reader sees (issue 27, item 10)

def a_regression_run(epochs=6):
    """A run as read_run gives it: a cosine learning rate over more than a decade, scores in
    [-1, 1] (r2) and in the targets' units (MAE, RMSE)."""
    lr = [3e-3 * (0.5 + 0.5 * np.cos(np.pi * e / epochs)) + 1e-4 for e in range(epochs)]
    rows = [{"epoch": e + 1, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1), "val_r2": 0.5 + e / 20,
             "val_mae": 3.0 - e / 5, "val_rmse": 4.0 - e / 5, "lr": lr[e]} for e in range(epochs)]
    config = {"x": "/data/X_train.npy", "model": "tcn", "task": "regression",
              "resolved": {"task": {"name": "regression"}, "data_shape": [600, 3, 1, 64], "monitor": "val_mae"}}
    summary = {"status": "completed", "monitor": "val_mae", "best": 2.0, "best_epoch": epochs,
               "best_metrics": {"r2": 0.75, "mae": 2.0}}
    return {"config": config, "rows": rows, "summary": summary, "examples": {}}


def drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()
    return fig


def tick_labels(axis):
    """The tick labels a reader sees on one axis: shown, with text, inside the axis' view."""
    low, high = sorted(axis.get_view_interval())
    return [label for tick in axis.get_major_ticks() + axis.get_minor_ticks() if low <= tick.get_loc() <= high
            for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text()]


def assert_apart(labels):
    boxes = [label.get_window_extent() for label in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_run_png_names_model_task_data_and_labels_both_right_axes(tmp_path):
    from biosig.report import run as report
    run = a_regression_run()
    title = report.run_title(run, str(tmp_path / "my_run"))
    assert title == "biosig run my_run: tcn, regression on X_train.npy (600, 3, 1, 64)"
    fig = drawn(report.figure(report.run_panels(run), run, title))
    assert fig._suptitle.get_text() == title
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    loss, metrics = panels["loss (learning rate: dashed, right axis)"], panels["metrics per epoch"]

    def right_of(panel):
        return [ax for ax in fig.axes if ax is not panel and panel.get_shared_x_axes().joined(panel, ax)]
    assert [ax.get_ylabel() for ax in right_of(loss)] == ["learning rate"]
    lr_axis = right_of(loss)[0]
    assert lr_axis.get_yscale() == "log"
    shown = tick_labels(lr_axis.yaxis)
    assert len(shown) >= 2 and len({label.get_fontsize() for label in shown}) == 1      # no second, minor size
    assert_apart(shown)
    assert [ax.get_ylabel() for ax in right_of(metrics)] == ["val_mae, val_rmse (targets' units)"]
    assert metrics.get_ylabel() == "score"


def sweep_trials(values, objectives, param="lr"):
    return [{"id": f"{param}={v}_{i}", param: str(v), "seed": "0", "objective": str(o)}
            for i, (v, o) in enumerate(zip(values, objectives))]


def test_sweep_mean_only_where_trials_share_a_value_and_log_labels_apart():
    from matplotlib.figure import Figure
    from biosig.report.sweep import panel_param

    def lines_of(trials, param="lr"):
        ax = Figure(figsize=(6, 4)).add_subplot()
        panel_param(ax, trials, param, "val_loss (min)")
        drawn(ax.figure)
        return ax, {line.get_label(): line for line in ax.get_lines()}

    # --search random: every trial its own lr and drop -- points, no mean line through them
    rng = np.random.default_rng(0)
    lr, drop = 10 ** rng.uniform(-4, -2, 8), rng.uniform(0, 0.5, 8)
    for param, values in (("lr", lr), ("drop", drop)):
        ax, lines = lines_of(sweep_trials(values, rng.uniform(0, 1, 8), param), param)
        assert "mean" not in lines
    ax, _ = lines_of(sweep_trials(lr, rng.uniform(0, 1, 8)))
    assert ax.get_xscale() == "log"
    shown = tick_labels(ax.xaxis)
    assert len(shown) >= 3
    assert_apart(shown)
    # a grid with seeds: every value repeats, the means are joined in x order
    _, lines = lines_of(sweep_trials([1e-3, 1e-3, 3e-3, 3e-3], [0.2, 0.4, 0.1, 0.3]))
    x, y = lines["mean"].get_data()
    assert list(x) == [1e-3, 3e-3] and np.allclose(y, [0.3, 0.2]) and lines["mean"].get_linestyle() == "-"
    # categories: a mean where several trials share one, none on a lone trial
    _, lines = lines_of(sweep_trials(["tcn", "tcn", "eegnet"], [0.5, 0.7, 0.4], "model"), "model")
    x, y = lines["mean"].get_data()
    assert list(x) == [0] and np.allclose(y, [0.6]) and lines["mean"].get_linestyle() == "None"


def write_loso_sweep(out):
    """A finished --cv loso sweep's files, as sweep.py writes them: 2 points x 4 folds."""
    import csv
    # tcn's mean is 0.75625: 0.7562 in the terminal (f"{:.4f}"); numpy's mean of these is 0.7562500000000001
    folds = {"model=tcn": [0.7, 0.7, 0.8, 0.825], "model=eegnet": [0.4, 0.5, 0.3, 0.4]}
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "model", "seed", "fold", "test_fold", "status", "exit_code", "objective", "test",
                    "best_epoch", "wall_s", "samples_per_s", "run_dir", "error"])
        for point, scores in folds.items():
            for k, score in enumerate(scores):
                w.writerow([f"{point}_fold={k}", point[6:], 1337, k, "", "completed", 0, score, "", 2, 1.0, 900,
                            str(out / "trials" / f"{point}_fold={k}" / "run"), ""])
    (out / "summary.csv").write_text("rank,point,model,n,failed,pruned,mean,std,min,max\n"
                                     "1,model=tcn,tcn,4,0,0,0.75625,0.0625,0.7,0.825\n"
                                     "2,model=eegnet,eegnet,4,0,0,0.4,0.0816,0.3,0.5\n")
    (out / "folds.csv").write_text("point,model,fold 0,fold 1,fold 2,fold 3\n" + "".join(
        f"{p},{p[6:]},{','.join(map(str, s))}\n" for p, s in folds.items()))
    best = {"metric": "val_acc", "mode": "max", "point": "model=tcn", "params": {"model": "tcn"}, "n": 4,
            "mean": 0.75625, "std": 0.0625, "command": "python train.py --model tcn --save best.pt",
            "cv": {"k": 4, "loso": True, "nested": False, "folds": {"0": 0.7, "1": 0.7, "2": 0.8, "3": 0.825},
                   "groups": {"0": [3], "1": [0], "2": [2], "3": [1]}},
            "report": {"selected_on": "the validation folds of --cv loso", "score": 0.75625, "std": 0.0625,
                       "metric": "val_acc", "reported_on": "the validation folds of --cv loso",
                       "same_data_as_selection": True}}
    (out / "best.json").write_text(json.dumps(best))
    return best


def test_loso_sweep_report_shows_each_fold_and_the_honest_line(tmp_path, monitor_figures, capsys):
    import biosig.cli.report as report
    from biosig.report.best import best_lines
    best = write_loso_sweep(tmp_path)
    report.main([str(tmp_path), "--threads", "1"])
    printed = capsys.readouterr()
    assert printed.out.split() == [str(tmp_path / "report.png"), str(tmp_path / "report.html")]   # for a script
    assert printed.err == "biosig.report: 1 directory | threads 1 (--threads)\n"
    page = (tmp_path / "report.html").read_text()
    lines = best_lines(best)
    # what the sweep printed: one point's score on each fold (not each fold's best point)
    assert lines[0].startswith("the best point's score on each fold (val_acc): 0 (group 3): 0.7000  1 (group 0)")
    assert "the same data that chose the point: optimistic" in lines[-1]
    for line in lines:
        assert html.escape(line) in page
    assert "Per fold (folds.csv)" in page and "<th>fold 3</th>" in page
    fig = monitor_figures[-1]
    assert [ax.get_title() for ax in fig.axes] == ["val_acc (max) against model",
                                                   "val_acc (max) per fold (best 2 points)"]
    assert [label.get_text() for label in fig.axes[1].get_xticklabels()] == [
        "0\ngroup 3", "1\ngroup 0", "2\ngroup 2", "3\ngroup 1"]
    # each point's mean as the terminal and summary.csv say it
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["model=tcn (mean 0.7562)",
                                                                             "model=eegnet (mean 0.4000)"]
    assert "optimistic" in fig.supxlabel_text      # the PNG alone says it too


@pytest.fixture
def monitor_figures(monkeypatch):
    """The Figures the reports draw, in order (to look at them without eyes)."""
    from biosig.report import figure as plots, run as report
    from biosig.report import sweep as sweep_report
    made = []
    real = plots.figure

    def keep(*args, **kwargs):
        fig = real(*args, **kwargs)
        fig.supxlabel_text = fig._supxlabel.get_text() if fig._supxlabel else ""
        made.append(fig)
        return fig
    for module in (report, sweep_report):
        monkeypatch.setattr(module, "figure", keep)
    return made


def test_a_sole_panel_fills_the_figure(tmp_path, monitor_figures):
    import biosig.cli.report as report
    write_loso_sweep(tmp_path)
    (tmp_path / "folds.csv").unlink()          # no folds panel: the model panel alone
    report.main([str(tmp_path)])
    fig = drawn(monitor_figures[-1])
    (ax,) = fig.axes
    left, _, width, _ = ax.get_position().bounds
    assert width > 0.75 and left < 0.2, ax.get_position()
    footer = fig._supxlabel           # the per-fold and report lines, wrapped to the narrower figure
    assert "the best point's score on each fold" in footer.get_text() and "optimistic" in footer.get_text()
    box, page = footer.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1, (box, page)
