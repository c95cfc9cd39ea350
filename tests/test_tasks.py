"""Regression, per-frame segmentation, masked-reconstruction pretraining and fine-tuning
(--init, --freeze-encoder), as a user runs them: train.py, infer.py, torchrun, resume, sweep, parquet."""
import json

import numpy as np
import pytest
import torch

from biosig.tasks import TASKS
from conftest import FAST, assert_user_error, run, run_here, slow_after, torchrun


def save(d, name, X, y=None):
    np.save(d / f"X_{name}.npy", X)
    if y is not None:
        np.save(d / f"y_{name}.npy", y)
    return ["--x", d / f"X_{name}.npy"] + (["--y", d / f"y_{name}.npy"] if y is not None else [])


def r2(pred, y):
    return 1 - ((pred - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)


def test_regression_recovers_a_linear_target_and_infer_reports_it_in_units(tmp_path):
    X, y = TASKS["regression"].example_data(300, 3, 1, 64)           # (300, 2) targets near 10 and 20
    data = save(tmp_path, "r", X, y)
    proc = run_here("train.py", *data, "--task", "regression", "--model", "tcn", "--epochs", "10", "--lr", "3e-3",
                    "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["monitor"] == "val_mae" and summary["mode"] == "min"
    assert summary["best_metrics"]["r2"] > 0.9, summary["best_metrics"]
    assert "mae=" in proc.stdout and "r2=" in proc.stdout and "acc=" not in proc.stdout
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["task"]["name"] == "regression" and len(ckpt["task"]["mean"]) == 2
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", *data, "--out", tmp_path / "p.npy", "--report",
                   tmp_path / "rep.json")
    assert inf.returncode == 0, inf.stderr
    assert inf.stdout.startswith("[sample 0] pred=[") and "r2=" in inf.stdout and "target 1:" in inf.stdout
    pred = np.load(tmp_path / "p.npy")
    assert pred.shape == (300, 2) and (r2(pred, y) > 0.9).all()        # in the targets' own units
    scores = json.loads((tmp_path / "rep.json").read_text())["scores"]      # numbers, per target too
    assert scores["n"] == 300 and scores["per_target"]["r2"] == pytest.approx(r2(pred, y).tolist(), abs=1e-4)
    assert scores["mae"] == pytest.approx(np.abs(pred - y).mean(), rel=1e-4)

    # one target (N,): a scalar per window, preds (B, 1); the report in one line
    data1 = save(tmp_path, "r1", X, y[:, 0] * 3 + 60)
    proc = run_here("train.py", *data1, "--task", "regression", "--model", "tcn", "--epochs", "4", "--lr", "3e-3",
                    "--loss", "huber", "--save", tmp_path / "m1.pt", "--run-dir", tmp_path / "run1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    inf = run_here("infer.py", "--ckpt", tmp_path / "m1.pt", *data1, "--out", tmp_path / "p1.csv")
    assert inf.returncode == 0, inf.stderr
    first = inf.stdout.splitlines()[0]
    assert first.startswith("[sample 0] pred=") and "[" not in first.split("pred=")[1]
    rows = (tmp_path / "p1.csv").read_text().splitlines()
    assert rows[0] == "sample,pred" and len(rows) == 301
    assert abs(float(rows[1].split(",")[1]) - (y[0, 0] * 3 + 60)) < 15


def test_bad_regression_targets_are_one_line_and_write_nothing(tmp_path):
    X, y = TASKS["regression"].example_data(60, 3, 1, 32)
    base = ["--task", "regression", "--model", "tcn", "--epochs", "1", "--save", tmp_path / "m.pt",
            "--run-dir", tmp_path / "run"]
    nan = y.copy()
    nan[7, 1] = np.nan
    assert_user_error(run_here("train.py", *save(tmp_path, "nan", X, nan), *base), "y_nan.npy", "window 7", "NaN")
    assert_user_error(run_here("train.py", *save(tmp_path, "short", X, y[:50]), *base), "50 labels", "60 windows")
    flat = np.full(60, 3.0)
    assert_user_error(run_here("train.py", *save(tmp_path, "flat", X, flat), *base), "y_flat.npy", "the target is 3", "nothing to learn")
    np.save(tmp_path / "y_val3.npy", np.zeros((60, 3)))
    assert_user_error(run_here("train.py", *save(tmp_path, "ok", X, y), *base, "--x-val", tmp_path / "X_ok.npy",
                               "--y-val", tmp_path / "y_val3.npy"), "y_val3.npy", "(60, 3)", "(N, 2)")
    assert_user_error(run_here("train.py", *save(tmp_path, "ok", X, y), *base[2:], "--loss", "l1"),
                      "--loss", "--task regression", "--task classification")
    assert_user_error(run_here("train.py", *save(tmp_path, "ok", X, y), *base, "--loss", "l3"), "--loss", "l3")
    assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()


def test_segmentation_finds_planted_onsets_and_infer_maps_back_to_input_frames(tmp_path):
    X, y = TASKS["segmentation"].example_data(400, 3, 1, 64)
    data = save(tmp_path, "s", X, y)
    majority = np.bincount(y.ravel()).max() / y.size
    proc = run_here("train.py", *data, "--task", "segmentation", "--model", "eeg2arm", *FAST, "--epochs", "12",
                    "--onset-tolerance", "4", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((tmp_path / "run" / "summary.json").read_text())["best_metrics"]
    assert best["acc"] > majority + 0.1, (best["acc"], majority)
    assert best["f1"] > 0.6 and best["event_f1"] > 0.2, best
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["task"]["frames"].startswith("output frame j covers input frames")
    # eeg2arm pools time by 2: its 32 output frames come back as the input's 64
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", *data, "--out", tmp_path / "p.npy", "--report",
                   tmp_path / "rep.json")
    assert inf.returncode == 0, inf.stderr
    assert inf.stdout.startswith("[sample 0] segments 0:0-") and "event_f1=" in inf.stdout
    probs = np.load(tmp_path / "p.npy")
    assert probs.shape == (400, 64, 3) and np.allclose(probs.sum(-1), 1, atol=1e-4)
    assert (probs.argmax(-1) == y).mean() > majority + 0.1
    scores = json.loads((tmp_path / "rep.json").read_text())["scores"]
    assert scores["n"] == 400 and scores["n_frames"] == 400 * 64 and np.sum(scores["confusion"]) == 400 * 64
    assert scores["accuracy"] == pytest.approx((probs.argmax(-1) == y).mean(), abs=1e-6)
    assert set(scores["events"]) == {"1", "2"} and scores["tolerance"] == 4 and 0 <= scores["event_f1"] <= 1
    assert run_here("infer.py", "--ckpt", tmp_path / "m.pt", *data[:2], "--out", tmp_path / "p.csv",
                    "--quiet").returncode == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "sample,frame,pred,score,prob_0,prob_1,prob_2" and len(rows) == 1 + 400 * 64

    # labels that are not one per frame: one line
    assert_user_error(run_here("train.py", *save(tmp_path, "bad", X, y[:, :60]), "--task", "segmentation", "--model",
                               "tcn", "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b"), "(400, 64)", "(400, 60)")
    assert_user_error(run_here("train.py", *save(tmp_path, "flat", X, y[:, 0]), "--task", "segmentation", "--model",
                               "tcn", "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b"), "y_flat.npy", "(N, T)")
    gap = np.where(y == 1, 3, y)                        # classes 0, 2, 3: class 1 has no frame
    assert_user_error(run_here("train.py", *save(tmp_path, "gap", X, gap), "--task", "segmentation", "--model", "tcn",
                               "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b"), "y_gap.npy", "no frame has class 1")
    assert_user_error(run_here("train.py", *data, "--task", "segmentation", "--model", "tcn", "--augment", "shift",
                               "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b"), "--augment shift", "labels")
    # per-frame labels given to the default task: the hint names the task
    assert_user_error(run_here("train.py", *data, "--model", "tcn", "--save", tmp_path / "b.pt", "--run-dir",
                               tmp_path / "b"), "y_s.npy", "--task segmentation")
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.pt").exists()


@pytest.mark.slow
def test_pretraining_on_unlabelled_windows_then_fine_tuning_beats_scratch_on_few_labels(tmp_path):
    """1,500 windows without labels, then 12 with (three different draws of 12): the pretrained
    encoder, fine-tuned, classifies the 500 test windows better than the same model trained
    from scratch on the same 12."""
    X, y = TASKS["classification"].example_data(2536, 3, 1, 64, seed=5, noise=2.0)
    unlabelled = save(tmp_path, "u", X[:1500])
    np.save(tmp_path / "Xt.npy", X[2036:])
    np.save(tmp_path / "yt.npy", y[2036:])
    pre = run_here("train.py", *unlabelled, "--task", "pretrain", "--model", "tcn", "--epochs", "8", "--lr", "3e-3",
                   "--standardize", "--save", tmp_path / "pre.pt", "--run-dir", tmp_path / "pre")
    assert pre.returncode == 0, pre.stderr[-3000:]
    best = json.loads((tmp_path / "pre" / "summary.json").read_text())["best_metrics"]
    assert best["mse"] < min(best["interp_mse"], best["zero_mse"]), best      # it learnt the signal
    inf = run_here("infer.py", "--ckpt", tmp_path / "pre.pt", *unlabelled, "--quiet", "--out", tmp_path / "err.npy",
                   "--report", tmp_path / "rep.json")
    assert inf.returncode == 0 and "masked reconstruction: mse=" in inf.stdout, inf.stderr
    assert np.load(tmp_path / "err.npy").shape == (1500,)
    scores = json.loads((tmp_path / "rep.json").read_text())["scores"]
    assert scores["n"] == 1500 and scores["mse"] == pytest.approx(np.load(tmp_path / "err.npy").mean(), rel=1e-5)

    acc = {"scratch": [], "tuned": []}
    for i in range(3):
        few = save(tmp_path, f"few{i}", X[2000 + 12 * i:2012 + 12 * i], y[2000 + 12 * i:2012 + 12 * i])
        common = [*few, "--x-test", tmp_path / "Xt.npy", "--y-test", tmp_path / "yt.npy", "--standardize",
                  "--epochs", "20", "--lr", "3e-3", "--val-split", "0"]
        for name, how in (("scratch", ["--model", "tcn"]), ("tuned", ["--init", tmp_path / "pre.pt"])):
            proc = run_here("train.py", *common, *how, "--save", tmp_path / f"{name}.pt", "--run-dir", tmp_path / f"{name}{i}")
            assert proc.returncode == 0, proc.stderr[-2000:]
            acc[name].append(json.loads((tmp_path / f"{name}{i}" / "summary.json").read_text())["test"]["acc"])
    assert "model: tcn (the model of --init" in proc.stdout
    assert "tensors loaded (blocks); new: head.weight, head.bias" in proc.stdout
    assert np.mean(acc["tuned"]) > np.mean(acc["scratch"]) + 0.05, acc
    # the encoder sees its inputs scaled as in pretraining: --standardize keeps the pool's statistics
    assert "preprocess: the standardization of --init" in proc.stdout
    pool = torch.load(tmp_path / "pre.pt", weights_only=True)["preprocess"]
    assert torch.load(tmp_path / "tuned.pt", weights_only=True)["preprocess"]["mean"] == pool["mean"]

    # --freeze-encoder: the loaded tensors come out as they went in; the head trains
    frozen = run_here("train.py", *few, "--epochs", "2", "--val-split", "0", "--init", tmp_path / "pre.pt",
                      "--freeze-encoder", "--save", tmp_path / "z.pt", "--run-dir", tmp_path / "z")
    assert frozen.returncode == 0 and "held fixed for every epoch" in frozen.stdout, frozen.stderr[-2000:]
    a = torch.load(tmp_path / "pre.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "z.pt", weights_only=True)["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in b if k.startswith("blocks") and "weight" in k)
    tuned = torch.load(tmp_path / "tuned.pt", weights_only=True)["model_state"]     # fine-tuning moved them
    assert not all(torch.equal(a[k], tuned[k]) for k in tuned if k.startswith("blocks") and "weight" in k)


def test_init_and_pretraining_refusals_are_one_line_and_write_nothing(tmp_path):
    """Nothing to load, or nothing loaded to freeze, or a pretraining option that cannot apply: one
    line, nothing written (from a 1-epoch pretrained tcn; the test above pretrains one that learns)."""
    X, y = TASKS["classification"].example_data(72, 3, 1, 64, seed=5, noise=2.0)
    unlabelled = save(tmp_path, "u", X[:60])
    few = save(tmp_path, "few", X[60:], y[60:])
    pre = run_here("train.py", *unlabelled, "--task", "pretrain", "--model", "tcn", "--epochs", "1", "--standardize",
                   "--save", tmp_path / "pre.pt", "--run-dir", tmp_path / "pre")
    assert pre.returncode == 0, pre.stderr[-3000:]
    X2, y2 = TASKS["classification"].example_data(40, 5, 1, 64)
    other = save(tmp_path, "c5", X2, y2)
    assert_user_error(run_here("train.py", *other, "--init", tmp_path / "pre.pt", "--model", "eegnet", "--save",
                               tmp_path / "n.pt", "--run-dir", tmp_path / "n"), "pre.pt", "--init", "none of its tensors",
                      "--model eegnet", "tcn")
    assert_user_error(run_here("train.py", *other, "--freeze-encoder", "--save", tmp_path / "n.pt", "--run-dir",
                               tmp_path / "n"), "--freeze-encoder", "--init")
    assert_user_error(run_here("train.py", *few, "--init", tmp_path / "pre.pt", "--model", "auto", "--save",
                               tmp_path / "n.pt", "--run-dir", tmp_path / "n"), "--init", "--model NAME", "tcn")
    assert_user_error(run_here("train.py", *unlabelled, "--task", "pretrain", "--model", "tcn", "--augment", "mixup",
                               "--save", tmp_path / "n.pt", "--run-dir", tmp_path / "n"), "--augment mixup")
    assert_user_error(run_here("train.py", *unlabelled, "--task", "pretrain", "--model", "tcn", "--mask-span", "64",
                               "--save", tmp_path / "n.pt", "--run-dir", tmp_path / "n"), "--mask-span 64", "T=64")
    assert not (tmp_path / "n").exists() and not (tmp_path / "n.pt").exists()


TASK_DATA = {"regression": ["--task", "regression"], "segmentation": ["--task", "segmentation"],
             "pretrain": ["--task", "pretrain", "--standardize"]}


def task_files(d, task, n=120, t=32):
    X, y = TASKS[task].example_data(n, 3, 1, t)
    return save(d, task, X, y) + TASK_DATA[task]


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASK_DATA))
def test_each_task_under_torchrun_matches_one_process(tmp_path, task):
    """2 processes splitting each global batch train what one process does: pretraining masks a
    window alike on every rank."""
    data = [*task_files(tmp_path, task), "--model", "eeg2arm", *FAST, "--drop", "0", "--sync-bn", "--deterministic",
            "--epochs", "1"]
    one = run_here("train.py", *data, "--save", tmp_path / "one.pt", "--run-dir", tmp_path / "one")
    two = torchrun(2, *data, "--save", tmp_path / "two.pt", "--run-dir", tmp_path / "two")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-2000:], two.stderr[-3000:])
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "two"))
    for part in ("model_state", "task_state"):
        assert set(a[part]) == set(b[part])
        for k in a[part]:
            torch.testing.assert_close(b[part][k], a[part][k], rtol=1e-4, atol=1e-5, msg=k)
    ma = json.loads((tmp_path / "one" / "metrics.jsonl").read_text())
    mb = json.loads((tmp_path / "two" / "metrics.jsonl").read_text())
    assert set(ma) == set(mb)
    for k in ma:
        if k.startswith("val_") or k == "train_loss":
            assert mb[k] == pytest.approx(ma[k], rel=1e-4, abs=1e-6), k


@pytest.mark.parametrize("task", slow_after(sorted(TASK_DATA)))
def test_each_task_resumes_bitwise(tmp_path, task):
    data = [*task_files(tmp_path, task), "--model", "tcn"]
    straight = run_here("train.py", *data, "--epochs", "3", "--save", tmp_path / "a.pt", "--run-dir", tmp_path / "a")
    first = run_here("train.py", *data, "--epochs", "1", "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b")
    assert straight.returncode == 0 and first.returncode == 0, (straight.stderr[-2000:], first.stderr[-2000:])
    resumed = run_here("train.py", "--resume", tmp_path / "b" / "last.pt", "--epochs", "3")
    assert resumed.returncode == 0 and "resuming after epoch 1" in resumed.stdout, resumed.stderr[-2000:]
    a, b = (torch.load(tmp_path / n / "last.pt", weights_only=True) for n in "ab")
    for part in ("model_state", "task_state"):
        assert set(a[part]) == set(b[part])
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    strip = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for n in "ab" for line in (tmp_path / n / "metrics.jsonl").read_text().splitlines()]
    assert strip[:3] == strip[3:]


@pytest.mark.slow
def test_sweep_ranks_regression_trials_by_the_tasks_own_direction(tmp_path):
    """--metric val_mae is minimized (the task's monitors say so, summary.json "monitors")."""
    data = task_files(tmp_path, "regression", n=100)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"lr": [1e-5, 3e-3]}))
    proc = run("sweep.py", "--grid", grid, "--out", tmp_path / "sw", "--metric", "val_mae", "--jobs", "2", "--",
               *data, "--model", "tcn", "--epochs", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((tmp_path / "sw" / "best.json").read_text())
    assert best["mode"] == "min" and best["params"]["lr"] == 3e-3, best


def test_parquet_targets_float_and_list_valued(tmp_path):
    """Regression (N, 2) floats and segmentation (N, T) labels go through biosig.convert into a
    list-valued label column, train and infer from it, and come back unchanged."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from biosig.data.parquet import write_windows_table
    from test_parquet import run_convert
    for task in ("regression", "segmentation"):
        X, y = TASKS[task].example_data(80, 3, 1, 32)
        files = save(tmp_path, task, X, y)
        path = tmp_path / f"{task}.parquet"
        conv = run_convert(*files, "--out", path)
        assert conv.returncode == 0, conv.stderr
        proc = run_here("train.py", "--x", path, "--task", task, "--model", "tcn", "--epochs", "1",
                        "--save", tmp_path / f"{task}.pt", "--run-dir", tmp_path / task)
        assert proc.returncode == 0, proc.stderr[-2000:]
        inf = run_here("infer.py", "--ckpt", tmp_path / f"{task}.pt", "--x", path, "--quiet")
        assert inf.returncode == 0 and ("r2=" in inf.stdout if task == "regression" else "event_f1=" in inf.stdout)
        back = run_convert("--x", path, "--out-x", tmp_path / "Xb.npy", "--out-y", tmp_path / "yb.npy")
        assert back.returncode == 0, back.stderr
        assert np.array_equal(np.load(tmp_path / "yb.npy"), y) and np.load(tmp_path / "yb.npy").dtype == y.dtype
    # a list column whose rows differ in length: one line naming the row
    ragged = tmp_path / "ragged.parquet"
    write_windows_table(ragged, X[:3])
    pq.write_table(pq.read_table(ragged).append_column("label", [[[0, 1], [1, 0], [0]]]), ragged)
    assert_user_error(run_here("train.py", "--x", ragged, "--task", "regression", "--model", "tcn", "--save",
                               tmp_path / "r.pt", "--run-dir", tmp_path / "r"), "ragged.parquet", "row 2", "1 values")


def test_model_auto_takes_a_per_frame_model_for_a_per_frame_task(tmp_path):
    """Neither auto candidate gives per-frame outputs: auto takes tcn without cross-validation,
    and keeps the validation split (auto's --val-split 0 goes with its cross-validation)."""
    X, y = TASKS["classification"].example_data(60, 3, 1, 32)
    proc = run_here("train.py", *save(tmp_path, "p", X, y), "--task", "pretrain", "--epochs", "1", "--save",
                    tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "auto: tcn, with no cross-validation (none of minirocket, tangent, eegnet learns --task pretrain)" in proc.stdout
    assert "split random: train 48 / val 12" in proc.stdout
    assert proc.stderr.count("warning:") == 1 and "--y" in proc.stderr         # pretraining reads no y
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["selection"]["chosen"] == "tcn" and summary["monitor"] == "val_loss"


def test_pretraining_takes_an_encoder_that_sees_the_whole_window(tmp_path):
    """--task pretrain without --model takes tcn, with levels enough for its last frame to see a
    window of 256 frames (5 levels: 373 frames; the 4 of old saw the last 181), and --init builds
    the same encoder from the checkpoint."""
    from biosig.cli.train import main
    from biosig.models import build_model
    X, _ = TASKS["classification"].example_data(40, 3, 1, 256)
    np.save(tmp_path / "X.npy", X)
    main(["--task", "pretrain", "--x", str(tmp_path / "X.npy"), "--epochs", "1", "--batch", "20", "--no-report",
          "--save", str(tmp_path / "pre.pt"), "--run-dir", str(tmp_path / "run")])
    config = torch.load(tmp_path / "pre.pt", weights_only=True)["config"]
    assert config["name"] == "tcn" and config["levels"] == 5
    assert build_model(config).receptive_field >= 256
