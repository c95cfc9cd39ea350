"""Exact resume after a real SIGKILL, and atomic checkpoint writes."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ENV, FAST, ROOT, assert_user_error, run

ARGS = ["--epochs", "6", "--deterministic", "--patience", "4", "--drop", "0.2", "--lr-patience", "1", *FAST]


def metrics_without_time(path):
    rows = [json.loads(l) for l in open(path)]
    for r in rows:
        r.pop("seconds")
    return rows


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

    for name in ("last.pt",):
        a = torch.load(d / "ref" / name, weights_only=True)
        b = torch.load(d / "cut" / name, weights_only=True)
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
    first = run("train.py", "--x", dataset["x"], "--y", dataset["y"], "--save", d / "m.pt", "--run-dir", d / "r",
                "--epochs", "2", *FAST)
    assert first.returncode == 0, first.stderr
    last = d / "r" / "last.pt"
    before = last.stat().st_mtime_ns
    assert_user_error(run("train.py", "--resume", last, "--lr", "0.1"), "last.pt", "--lr 0.1", "differs")
    assert_user_error(run("train.py", "--resume", last, "--x", d / "other.npy"), "--x", "differs")
    assert last.stat().st_mtime_ns == before
    more = run("train.py", "--resume", last, "--epochs", "3")
    assert more.returncode == 0, more.stderr
    assert [json.loads(l)["epoch"] for l in open(d / "r" / "metrics.jsonl")] == [1, 2, 3]
    assert json.loads((d / "r" / "summary.json").read_text())["epochs_run"] == 3


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
