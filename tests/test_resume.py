"""Exact resume after a real SIGKILL, and atomic checkpoint writes."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ENV, FAST, ROOT, assert_user_error, run, run_here

ARGS = ["--epochs", "6", "--deterministic", "--patience", "4", "--drop", "0.2", "--lr-patience", "1", *FAST]


def metrics_without_time(path):
    rows = [json.loads(l) for l in open(path)]
    for r in rows:
        r.pop("seconds")
    return rows


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(dataset):
    d = dataset["dir"]
    data = ["--x", dataset["x"], "--y", dataset["y"]]
    ref = run("train.py", *data, "--save", d / "ref.pt", "--run-dir", d / "ref", *ARGS)
    assert ref.returncode == 0, ref.stderr

    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *data, "--save", str(d / "cut.pt"),
           "--run-dir", str(d / "cut"), *ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("[epoch 002]"):
            proc.send_signal(signal.SIGKILL)            # no chance to clean up, as with an OOM kill
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (d / "cut" / "summary.json").exists()
    done = torch.load(d / "cut" / "last.pt", weights_only=True)["resume"]["epoch"]
    assert 2 <= done < 6               # the epoch line is printed only once its last.pt is saved

    resumed = run("train.py", "--resume", d / "cut" / "last.pt")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {done}" in resumed.stdout

    a = torch.load(d / "ref" / "last.pt", weights_only=True)
    b = torch.load(d / "cut" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 6
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k      # bitwise
    opt_a, opt_b = a["resume"]["optimizer"]["state"], b["resume"]["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    assert a["resume"]["scheduler"] == b["resume"]["scheduler"]
    assert a["resume"]["early_stopping"] == b["resume"]["early_stopping"]
    best_a, best_b = torch.load(d / "ref.pt", weights_only=True), torch.load(d / "cut.pt", weights_only=True)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model_state"][k], best_b["model_state"][k]) for k in best_a["model_state"])
    assert metrics_without_time(d / "ref" / "metrics.jsonl") == metrics_without_time(d / "cut" / "metrics.jsonl")
    sa = json.loads((d / "ref" / "summary.json").read_text())
    sb = json.loads((d / "cut" / "summary.json").read_text())
    for key in ("best", "best_epoch", "best_metrics", "epochs_run", "status"):
        assert sa[key] == sb[key], key


def test_resume_extends_epochs_and_refuses_contradictions(dataset):
    d = dataset["dir"]
    first = run_here("train.py", "--x", dataset["x"], "--y", dataset["y"], "--save", d / "m.pt", "--run-dir", d / "r",
                     "--epochs", "2", *FAST)
    assert first.returncode == 0, first.stderr
    last = d / "r" / "last.pt"
    before = last.stat().st_mtime_ns
    assert_user_error(run_here("train.py", "--resume", last, "--lr", "0.1"), "last.pt", "--lr 0.1", "differs")
    assert_user_error(run_here("train.py", "--resume", last, "--x", d / "other.npy"), "--x", "differs")
    assert last.stat().st_mtime_ns == before
    # resuming a finished run trains nothing and says how to extend it
    done = run_here("train.py", "--resume", last)
    assert done.returncode == 0 and "[epoch" not in done.stdout, done.stderr
    assert "the run is complete (2 of 2 epochs" in done.stdout and "--epochs 12" in done.stdout
    assert last.stat().st_mtime_ns == before
    more = run_here("train.py", "--resume", last, "--epochs", "3")
    assert more.returncode == 0, more.stderr
    assert [json.loads(l)["epoch"] for l in open(d / "r" / "metrics.jsonl")] == [1, 2, 3]
    assert json.loads((d / "r" / "summary.json").read_text())["epochs_run"] == 3


def interrupt(cmd, when):
    """Start cmd, send SIGINT (Ctrl-C) once `when(line)` is true for a line of its stdout (or
    after 0.5 s when `when` is None), return (exit status, stderr lines)."""
    # SIGINT as a terminal delivers it: a test run in the background (SIGINT ignored, as a
    # non-interactive shell's & does) must not hand that on, or Python never raises KeyboardInterrupt
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if when is None:
        time.sleep(0.5)
    else:
        for line in proc.stdout:
            if when(line):
                break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


@pytest.mark.slow
def test_ctrl_c_ends_in_one_line_that_says_how_to_resume(tmp_path):
    """Ctrl-C at start-up, before the first epoch is saved, and later: exit 130, one line, no
    traceback; what it says to run works."""
    from conftest import make_windows
    X, y = make_windows(n=3000, t=64)           # epochs of a few seconds
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--x", str(tmp_path / "X.npy"), "--y",
           str(tmp_path / "y.npy"), "--save", str(tmp_path / "m.pt"), "--run-dir", str(run_dir), "--epochs", "50",
           *map(str, FAST), "--batch", "16"]
    for when, words in ((None, "interrupted"), (lambda line: line.startswith("run dir:"), "before any epoch was saved")):
        code, err = interrupt(cmd, when)
        assert code == 130 and len(err) == 1 and words in err[0], err
        assert not run_dir.exists() and not (tmp_path / "m.pt").exists()   # nothing kept: the same command runs again
    code, err = interrupt(cmd, lambda line: line.startswith("[epoch 001]"))
    assert code == 130 and len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith("interrupted in epoch ") and "is saved. Resume with: " in err[0]
    command = shlex.split(err[0].split("Resume with: ")[1])
    assert command[0] == "python" and command[-2:] == ["--resume", str(run_dir / "last.pt")]
    # kill (SIGTERM: scancel, a preempted job) stops the same way, exit 143, and the run goes on
    proc = subprocess.Popen([sys.executable, *command[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("[epoch "):
            break
    proc.send_signal(signal.SIGTERM)
    err = [line for line in proc.communicate(timeout=120)[1].splitlines() if line.strip()]
    assert proc.returncode == 143 and len(err) == 1 and err[0].startswith("stopped by SIGTERM in epoch "), err
    again = subprocess.run([sys.executable, *command[1:], "--epochs", "6"], capture_output=True, text=True,
                           env=ENV, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((run_dir / "summary.json").read_text())["epochs_run"] == 6


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    from biosig import checkpoint
    path = tmp_path / "ckpt.pt"
    checkpoint.atomic_save({"epoch": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_save({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pt"]             # no temporary file left behind
