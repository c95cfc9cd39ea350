"""Run and sweep reports: report.png and a self-contained report.html that a real browser renders,
panels by what the run recorded, python -m biosig.report, and one line when matplotlib is missing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ENV, ROOT, assert_user_error, make_windows, run

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


def test_a_run_writes_a_report_and_a_browser_renders_it(tmp_path):
    X, y = make_windows(n=160, t=32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "names.json").write_text(json.dumps(["rest", "left", "right"]))
    proc = run("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", *TCN, "--epochs", "3",
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

    from biosig import report
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
    from biosig import report
    from biosig.tasks import Regression, Segmentation
    for task, cls, panel in (("regression", Regression, "predicted vs true"), ("segmentation", Segmentation, "frames")):
        X, y = cls.example_data(120, 3, 1, 32, seed=0)
        np.save(tmp_path / f"X_{task}.npy", X)
        np.save(tmp_path / f"y_{task}.npy", y)
        run_dir = tmp_path / task
        proc = run("train.py", "--task", task, "--x", tmp_path / f"X_{task}.npy", "--y", tmp_path / f"y_{task}.npy",
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


def test_sweep_report_and_python_m_biosig_report(tmp_path, dataset):
    (tmp_path / "grid.json").write_text(json.dumps({"lr": [0.003, 0.0003]}))
    out = tmp_path / "sw"
    proc = run("sweep.py", "--grid", tmp_path / "grid.json", "--out", out, "--", "--x", dataset["x"], "--y",
               dataset["y"], *TCN[:2], "--epochs", "1", report=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"plots: {out / 'report.html'} (and report.png)" in proc.stdout
    page = (out / "report.html").read_text()
    assert "Ranked points" in page and "0.003" in page and "data:image/png;base64," in page
    assert not list(out.glob("trials/*/run/report.png"))         # trials write none: the sweep writes one

    (out / "report.png").unlink()
    trial_run = next(out.glob("trials/*/run"))
    made = subprocess.run([sys.executable, "-m", "biosig.report", str(out), str(trial_run)], capture_output=True,
                          text=True, cwd=ROOT, env=ENV, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.split() == [str(out / "report.png"), str(out / "report.html"), str(trial_run / "report.png"),
                                   str(trial_run / "report.html")]
    for bad, needle in ((tmp_path / "nowhere", "no such directory"), (tmp_path, "not a run directory")):
        proc = subprocess.run([sys.executable, "-m", "biosig.report", str(bad)], capture_output=True, text=True,
                              cwd=ROOT, env=ENV, timeout=300)
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
