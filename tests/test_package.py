"""pyproject.toml: `pip install .` into a fresh venv gives the biosig package and its commands,
which work from a directory that is not the checkout, as the checkout's scripts do."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import ENV, ROOT, assert_user_error


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_the_api_and_the_commands(tmp_path):
    src = tmp_path / "src"        # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(os.path.join(ROOT, "biosig"), src / "biosig", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    py = str(venv / "bin" / "python")
    # torch, numpy, tqdm (and setuptools, to build) from this interpreter's site-packages: no network;
    # this interpreter's pip installs into the venv (--python)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "_outer.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", py, "--disable-pip-version-check", "-q",
                                "install", "--no-deps", "--no-build-isolation", str(src)],
                               capture_output=True, text=True, env=ENV, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = dict(ENV, PATH=f"{venv / 'bin'}{os.pathsep}{ENV.get('PATH', '')}")
    env.pop("PYTHONPATH", None)

    def command(*argv):
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=away, env=env, timeout=600)

    made = command("biosig-examples", "classification", "ex")
    assert made.returncode == 0 and (away / "ex" / "X_train.npy").exists(), made.stderr[-2000:]
    data = ["--x", "ex/X_train.npy", "--y", "ex/y_train.npy", "--model", "tcn"]
    trained = command("biosig-train", *data, "--epochs", "4", "--save", "ckpt.pt", "--run-dir", "run", "--no-report")
    assert trained.returncode == 0, trained.stderr[-3000:]
    scored = command("biosig-infer", "--ckpt", "ckpt.pt", "--x", "ex/X_test.npy", "--y", "ex/y_test.npy", "--quiet")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert float(scored.stdout.split("accuracy=")[1].split()[0]) > 0.6      # real signal, 3 classes

    api = ("import biosig, numpy as np\n"
           "from biosig.inference import load_model_from_checkpoint\n"
           f"assert biosig.__file__.startswith({site!r}), biosig.__file__\n"
           "p = load_model_from_checkpoint('ckpt.pt')\n"
           "print((p.predict(np.load('ex/X_test.npy'))['pred'] == np.load('ex/y_test.npy')).mean())\n")
    proc = command(py, "-c", api)
    assert proc.returncode == 0 and float(proc.stdout.split()[-1]) > 0.6, proc.stderr[-3000:]

    # a sweep's trials run the installed biosig-train (warm-started, as from the checkout)
    (away / "grid.json").write_text(json.dumps({"lr": [0.003]}))
    swept = command("biosig-sweep", "--grid", "grid.json", "--out", "sw", "--no-report", "--", *data, "--epochs", "2")
    assert swept.returncode == 0, swept.stdout[-2000:] + swept.stderr[-2000:]
    best = json.loads((away / "sw" / "best.json").read_text())
    assert best["argv"][1] == str(venv / "bin" / "biosig-train") and os.path.exists(best["checkpoint"])

    # one-line errors (exit 2) from an installed command, and the module tools with python -m
    assert_user_error(command("biosig-train", "--x", "missing.npy", "--y", "ex/y_train.npy", "--save", "a.pt"),
                      "missing.npy")
    converted = command(py, "-m", "biosig.convert", "--help")
    assert converted.returncode == 0 and "parquet" in converted.stdout
    assert os.path.exists(os.path.join(site, "biosig", "deploy", "lsl_api.cfg"))      # package data travels
    # the license travels with the package: its metadata says BSD-3-Clause, the LICENSE file is installed
    meta = command(py, "-c", "from importlib.metadata import metadata, files; m = metadata('biosig'); "
                             "print(m['License-Expression']); print(any(f.name == 'LICENSE' for f in files('biosig')))")
    assert meta.stdout.split() == ["BSD-3-Clause", "True"], meta.stdout + meta.stderr[-2000:]


def test_the_installed_command_says_how_to_resume_with_itself(monkeypatch):
    from biosig.training.resume import resume_command
    monkeypatch.setattr(sys, "argv", ["/opt/v/bin/biosig-train", "--x", "X.npy"])
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert resume_command("runs/a/last.pt") == ["/opt/v/bin/biosig-train", "--resume", "runs/a/last.pt"]
    monkeypatch.setattr(sys, "argv", ["train.py", "--x", "X.npy"])
    assert resume_command("runs/a/last.pt") == ["python", "train.py", "--resume", "runs/a/last.pt"]
