"""train.py + infer.py end to end, run as a user runs them."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import FAST, ROOT, assert_user_error, make_windows, run_here


def train(dataset, *extra, name="run", epochs=4):
    d = dataset["dir"]
    proc = run_here("train.py", "--x", dataset["x"], "--y", dataset["y"], "--save", d / f"{name}.pt",
                    "--run-dir", d / name, "--epochs", epochs, *FAST, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, d / f"{name}.pt", d / name


def test_learns_writes_artifacts_and_infers(dataset):
    proc, ckpt, run_dir = train(dataset, "--normalize", "--seed", "3", epochs=6)
    # the guide's one line per epoch, and the data / model / run-dir lines
    epoch_lines = [l for l in proc.stdout.splitlines() if l.startswith("[epoch ")]
    assert len(epoch_lines) == 6 and "train: loss=" in epoch_lines[0] and "| val: loss=" in epoch_lines[0]
    assert "f1=" in epoch_lines[0]
    assert "global batch 32" in proc.stdout

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("monitor", "mode", "best", "best_epoch", "best_metrics", "epochs_run", "status",
                "checkpoint", "wall_s", "train_samples_per_s"):
        assert key in summary, key
    assert summary["monitor"] == "val_loss" and summary["mode"] == "min" and summary["status"] == "completed"
    assert summary["epochs_run"] == 6 and summary["checkpoint"] == str(ckpt)
    assert summary["best_metrics"]["acc"] > 0.6          # 3 classes: chance is 0.33
    for key in ("per_class", "confusion", "balanced_acc", "auroc", "f1"):
        assert key in summary["best_metrics"], key

    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    for key in ("epoch", "train_loss", "val_loss", "val_acc", "val_f1", "lr", "seconds"):
        assert key in rows[0]
    best_row = min(rows, key=lambda r: r["val_loss"])
    assert best_row["epoch"] == summary["best_epoch"] and best_row["val_loss"] == pytest.approx(summary["best"])

    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["data_shape"] == [240, 3, 1, 32]
    assert set(config["versions"]) >= {"biosig", "torch", "numpy"} and config["lr"] == 3e-3

    # the checkpoint: plain data only, self-describing
    ck = torch.load(ckpt, weights_only=True)
    for key in ("model_state", "config", "example_input_shape", "epoch", "metrics", "version", "preprocess", "task"):
        assert key in ck, key
    assert ck["example_input_shape"] == [1, 3, 1, 32] and ck["epoch"] == summary["best_epoch"]
    assert ck["preprocess"]["normalize"] == "sample_zscore" and ck["task"]["n_classes"] == 3
    assert (run_dir / "last.pt").exists()

    # infer.py on fresh windows from the same distribution, without repeating --normalize
    X2, y2 = make_windows(n=90, seed=11)
    np.save(dataset["dir"] / "X2.npy", X2)
    np.save(dataset["dir"] / "y2.npy", y2)
    out = dataset["dir"] / "preds.csv"
    inf = run_here("infer.py", "--ckpt", ckpt, "--x", dataset["dir"] / "X2.npy", "--y", dataset["dir"] / "y2.npy",
                   "--out", out, "--report", dataset["dir"] / "rep.json")
    assert inf.returncode == 0, inf.stderr
    lines = [l for l in inf.stdout.splitlines() if l.startswith("[sample ")]
    assert len(lines) == 90 and lines[0].startswith("[sample 0] pred=") and " conf=0." in lines[0]
    acc = float(inf.stdout.split("accuracy=")[1].split()[0])
    assert acc > 0.6
    # --report: the same scores as numbers, no parsing; the printed lines kept under "report"
    rep = json.loads((dataset["dir"] / "rep.json").read_text())
    scores = rep["scores"]
    assert rep["task"] == "classification" and scores["n"] == 90 and scores["class_names"] == ["0", "1", "2"]
    assert scores["accuracy"] == pytest.approx(acc, abs=1e-4) and 0 < scores["auroc"] <= 1
    cm = np.array(scores["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == 90 and np.trace(cm) / 90 == pytest.approx(scores["accuracy"])
    assert cm.sum(1).tolist() == np.bincount(y2, minlength=3).tolist()       # true down, predicted across
    assert all(isinstance(v, float) for v in (scores["macro_f1"], scores["balanced_acc"]))
    assert rep["report"][0] in inf.stdout and rep["report"][0].startswith("accuracy=")
    csv = out.read_text().splitlines()
    assert csv[0].startswith("sample,pred,score") and len(csv) == 91
    preds = np.array([int(r.split(",")[1]) for r in csv[1:]])
    assert (preds == y2).mean() == pytest.approx(acc, abs=1e-4)


def test_sample_data_trains_above_chance(tmp_path):
    """The shipped BasicMotions windows (real smart-watch data) as the README's first command uses them."""
    data = os.path.join(ROOT, "data", "basicmotions")
    proc = run_here("train.py", "--x", f"{data}/X_train.npy", "--y", f"{data}/y_train.npy",
                    "--class-names", f"{data}/classes.json", "--epochs", "12", "--batch", "8", "--lr", "1e-3",
                    "--frame-embed", "64", "--save", tmp_path / "bm.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    inf = run_here("infer.py", "--ckpt", tmp_path / "bm.pt", "--x", f"{data}/X_test.npy", "--y", f"{data}/y_test.npy",
                   "--quiet", "--out", tmp_path / "preds.csv")
    assert inf.returncode == 0, inf.stderr
    acc = float(inf.stdout.split("accuracy=")[1].split()[0])
    assert acc >= 0.6, inf.stdout            # 4 classes: chance is 0.25
    assert "Badminton" in inf.stdout         # class names travel in the checkpoint
    # ... and into preds.csv: the predicted class's name, probability columns named by class
    import csv
    names = json.loads(open(f"{data}/classes.json").read())
    rows = list(csv.DictReader(open(tmp_path / "preds.csv")))
    assert list(rows[0]) == ["sample", "pred", "pred_name", "score"] + [f"prob_{n}" for n in names]
    assert all(r["pred_name"] == names[int(r["pred"])] for r in rows) and len(rows) == 40


def test_single_window_and_formats(dataset, trained):
    ckpt = trained["ckpt"]                      # conftest's shared 1-epoch FAST classifier of the same windows' kind
    d = dataset["dir"]
    np.save(d / "one.npy", dataset["X"][5])                       # (C, F, T)
    one = run_here("infer.py", "--ckpt", ckpt, "--x", d / "one.npy", "--out", d / "one.jsonl")
    assert one.returncode == 0, one.stderr
    assert one.stdout.count("[sample ") == 1
    row = json.loads((d / "one.jsonl").read_text())
    assert set(row) == {"sample", "pred", "score", "prob"} and abs(sum(row["prob"]) - 1) < 1e-5

    many = run_here("infer.py", "--ckpt", ckpt, "--x", dataset["x"], "--out", d / "all.npy", "--no-softmax", "--quiet",
                    "--batch", "7")
    assert many.returncode == 0, many.stderr
    logits = np.load(d / "all.npy")
    assert logits.shape == (240, 3)
    # the same numbers through the Python API, in one batch
    from biosig.deploy.predictor import load_model_from_checkpoint
    pred = load_model_from_checkpoint(str(ckpt)).predict(dataset["X"], softmax=False)
    np.testing.assert_allclose(pred["values"], logits, rtol=1e-4, atol=1e-5)
    assert np.array_equal(pred["pred"], logits.argmax(1))
    assert int(row["pred"]) == int(pred["pred"][5])


def test_normalization_travels_in_the_checkpoint(dataset, trained):
    """Inference applies the training-time z-score by itself; a contradicting flag only warns."""
    _, ck_norm, _ = train(dataset, "--normalize", name="norm", epochs=1)
    ck_raw = trained["ckpt"]                    # conftest's shared 1-epoch FAST classifier, no --normalize
    from biosig.deploy.predictor import load_model_from_checkpoint
    X = dataset["X"][:16]
    p = load_model_from_checkpoint(str(ck_norm))
    scaled = p.predict(X * 50 + 3, softmax=False)["values"]      # z-score makes scale and offset irrelevant
    np.testing.assert_allclose(scaled, p.predict(X, softmax=False)["values"], rtol=1e-3, atol=1e-3)
    raw = load_model_from_checkpoint(str(ck_raw))
    assert not np.allclose(raw.predict(X * 50 + 3, softmax=False)["values"], raw.predict(X, softmax=False)["values"])
    warn = run_here("infer.py", "--ckpt", ck_raw, "--x", dataset["x"], "--normalize", "--quiet")
    assert warn.returncode == 0 and "warning: --normalize ignored" in warn.stderr
    # per-frame predictions apply the checkpoint's preprocessing too; the bare model does not
    frames = p.predict_frames(X * 50 + 3, softmax=False)["values"]
    assert frames.shape == (16, 16, 3)                               # T' = 32 // cnn_time_pool 2
    np.testing.assert_allclose(frames[:, -1], p.predict(X, softmax=False)["values"], rtol=1e-3, atol=1e-3)
    with torch.no_grad():
        bare = p.model.forward_seq(torch.from_numpy(X * 50 + 3)).numpy()
    assert not np.allclose(bare, frames, atol=1e-2)


def test_save_inside_the_run_dir(dataset):
    """--save runs/a/best.pt with --run-dir runs/a: the checkpoint goes in the run's own directory."""
    d = dataset["dir"]
    for save in ("runs/a/best.pt", "runs/b/ckpt/best.pt"):
        run_dir = d / os.path.dirname(save).split("/ckpt")[0]
        proc = run_here("train.py", "--x", dataset["x"], "--y", dataset["y"], "--save", d / save, "--run-dir", run_dir,
                        "--epochs", "1", *FAST)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (d / save).exists() and (run_dir / "last.pt").exists()


def test_f1_raw_time_short_t_and_forward_seq():
    """The reference model crashes for F=1 and short T; ours pools only what is long enough."""
    from biosig.models import build_model
    for c, f, t in ((4, 1, 2), (4, 1, 3), (2, 3, 9), (3, 8, 16)):
        m = build_model({"name": "eeg2arm", "n_elec": c, "n_bands": f, "n_outputs": 5, "frame_embed": 16,
                         "n_heads": 2, "n_layers": 1}).eval()
        x = torch.randn(2, c, f, t)
        assert m.input_problem(c, f, t) is None
        assert m(x).shape == (2, 5) and m.forward_seq(x).shape == (2, t // 2, 5)
        # causal: frame 0's output does not depend on later frames
        x2 = x.clone()
        x2[..., 2:] += 5.0
        if t >= 4:
            torch.testing.assert_close(m.forward_seq(x)[:, 0], m.forward_seq(x2)[:, 0])
    m = build_model({"name": "eeg2arm", "n_elec": 4, "n_bands": 1, "n_outputs": 5, "cnn_time_pool": 4})
    assert "T=3 frames is too short" in m.input_problem(4, 1, 3)


def test_early_stopping_bf16_and_limits(dataset):
    # a huge LR never improves val_loss after epoch 1 with min-delta 10: stops after patience epochs
    proc, _, run_dir = train(dataset, "--patience", "2", "--min-delta", "10", "--amp", "bf16",
                             "--limit-train-batches", "2", epochs=10)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "early_stopped" and summary["epochs_run"] == 3 and summary["best_epoch"] == 1
    assert "early stopping" in proc.stdout
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_windows"] == 64 for r in rows)   # 2 batches of 32
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resolved"]["amp"] == "bf16"
    assert sorted(os.listdir(run_dir)) == ["config.json", "last.pt", "metrics.jsonl", "summary.json"]
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr   # no progress bar when not a terminal


def test_monitor_val_acc_and_fraction_limit(dataset):
    _, _, run_dir = train(dataset, "--monitor", "val_acc", "--limit-train-batches", "0.5", epochs=2)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["monitor"] == "val_acc" and summary["mode"] == "max"
    assert summary["best"] == summary["best_metrics"]["acc"]
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["train_windows"] == 96               # half of 6 batches of 32 (192 train windows)


def test_default_run_dir_never_overwrites(dataset, tmp_path):
    args = ("--x", dataset["x"], "--y", dataset["y"], "--epochs", "1", *FAST)
    first = run_here("train.py", *args, "--save", tmp_path / "a.pt", cwd=tmp_path)
    second = run_here("train.py", *args, "--save", tmp_path / "b.pt", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    dirs = sorted(os.listdir(tmp_path / "runs"))
    assert len(dirs) == 2 and all((tmp_path / "runs" / d / "summary.json").exists() for d in dirs)
    # an explicit --run-dir holding a run is refused, not overwritten
    again = run_here("train.py", *args, "--save", tmp_path / "c.pt", "--run-dir", tmp_path / "runs" / dirs[0], cwd=tmp_path)
    assert_user_error(again, "already holds a run", "--resume")
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.slow
def test_compile_trains(dataset):
    proc, ckpt, _ = train(dataset, "--compile", "--compile-backend", "aot_eager", epochs=1)
    ck = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith(("_orig_mod", "module.")) for k in ck["model_state"])


def test_mmap_ram_and_worker_reads_agree(dataset):
    """--load mmap (batches read from disk), --load ram and reader processes (--workers) train
    to identical weights."""
    _, a, _ = train(dataset, "--load", "mmap", "--deterministic", name="mmap", epochs=2)
    _, b, _ = train(dataset, "--load", "ram", "--deterministic", name="ram", epochs=2)
    _, c, _ = train(dataset, "--load", "mmap", "--workers", "2", "--deterministic", name="workers", epochs=2)
    sa, sb, sc = (torch.load(p, weights_only=True)["model_state"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) and torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.slow
def test_tcn_sees_the_whole_of_a_long_window(tmp_path):
    """Windows of 256 frames whose class is decided in their first 64 (a burst after a cue): tcn's
    levels follow T (auto: 5, a receptive field of 373 frames), so its last frame, which a window
    task reads, sees the burst. With 4 levels (181 frames) it stayed at chance (0.32)."""
    from biosig.cli.train import main
    rng = np.random.default_rng(0)
    n, t, burst = 300, 256, 64
    y = np.arange(n) % 3
    X = rng.normal(0, 0.8, size=(n, 3, 1, t)).astype(np.float32)
    for k in range(3):
        X[y == k, k, :, :burst] += 1.5 * np.sin(2 * np.pi * (k + 1) * np.arange(burst) / burst * 2)
    for name, part in (("train", slice(0, 220)), ("test", slice(220, n))):
        np.save(tmp_path / f"X_{name}.npy", X[part])
        np.save(tmp_path / f"y_{name}.npy", y[part])
    main(["--x", str(tmp_path / "X_train.npy"), "--y", str(tmp_path / "y_train.npy"), "--x-test",
          str(tmp_path / "X_test.npy"), "--y-test", str(tmp_path / "y_test.npy"), "--model", "tcn", "--epochs", "6",
          "--lr", "3e-3", "--batch", "32", "--no-report", "--save", str(tmp_path / "m.pt"), "--run-dir",
          str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["acc"] > 0.8             # 3 classes: chance is 0.33
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["config"]["levels"] == 5            # stored resolved: the checkpoint rebuilds the same model
