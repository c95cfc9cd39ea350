"""pyproject.toml: the biosig package builds into a wheel, installs, and its Python API and
`python -m biosig.*` tools run from a directory that is not the checkout."""
import os
import shutil
import subprocess
import sys

import numpy as np

from conftest import ENV, ROOT, make_windows, run


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    src = tmp_path / "src"                  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(os.path.join(ROOT, "biosig"), src / "biosig", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(src)],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").iterdir()
    assert wheel.name.startswith("biosig-0.")
    site = tmp_path / "site"
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, env=ENV, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]

    X, y = make_windows(n=96, t=32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    trained = run("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", "tcn", "--epochs", "6",
                  "--save", tmp_path / "ckpt.pt", "--run-dir", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr[-2000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = dict(ENV, PYTHONPATH=str(site))
    api = ("import biosig, numpy as np\n"
           "from biosig.inference import load_model_from_checkpoint\n"
           f"assert biosig.__file__.startswith({str(site)!r}), biosig.__file__\n"
           f"p = load_model_from_checkpoint({str(tmp_path / 'ckpt.pt')!r})\n"
           f"out = p.predict(np.load({str(tmp_path / 'X.npy')!r}))\n"
           f"print('acc', (out['pred'] == np.load({str(tmp_path / 'y.npy')!r})).mean())\n")
    proc = subprocess.run([sys.executable, "-c", api], capture_output=True, text=True, cwd=away, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(proc.stdout.split()[-1]) > 0.5                 # real signal, 3 classes
    tool = subprocess.run([sys.executable, "-m", "biosig.examples", "classification", "ex"], capture_output=True,
                          text=True, cwd=away, env=env, timeout=300)
    assert tool.returncode == 0 and (away / "ex" / "X_train.npy").exists(), tool.stderr[-2000:]
    assert (site / "biosig" / "lsl_api.cfg").exists()           # package data travels
