"""The recipe for small, noisy data: augmentation, class weights, label smoothing, the cosine
schedule with warm-up, and MiniRocket's fitted transform, under resume and torchrun."""
import json

import numpy as np
import pytest
import torch

from biosig.training import augment as aug
from biosig.tasks import Classification
from conftest import assert_user_error, run_here, torchrun

RECIPE = ["--augment", *aug.AUGMENTS, "--schedule", "cosine", "--warmup", "1", "--label-smoothing", "0.1",
          "--class-weights", "balanced"]


def test_each_augmentation_changes_the_batch_reproducibly():
    x = torch.randn(8, 3, 2, 50)
    before = x.clone()
    for name in aug.AUGMENTS:
        a, mix = aug.augment(x, [name], torch.Generator().manual_seed(1))
        b, _ = aug.augment(x, [name], torch.Generator().manual_seed(1))
        c, _ = aug.augment(x, [name], torch.Generator().manual_seed(2))
        assert a.shape == x.shape and a.dtype == x.dtype, name
        assert not torch.equal(a, x), name                 # it does something
        assert torch.equal(a, b) and not torch.equal(a, c), name     # from the generator only
        assert (mix is not None) == (name == "mixup"), name
    assert torch.equal(x, before)                          # the input is never modified
    _, mix = aug.augment(x, ["mixup"], torch.Generator().manual_seed(3))
    assert 0.5 <= mix.lam <= 1 and sorted(mix.perm.tolist()) == list(range(8))


def test_augmentation_sees_training_windows_only(tmp_path, monkeypatch):
    """Validation windows (all 100.0 here) never pass through augmentation; every training batch does."""
    import biosig.training.loop
    from biosig.training.options import train_parser
    from biosig.training.run import run as train
    X, y = Classification.example_data(96, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "Xv.npy", np.full((30, 3, 1, 64), 100.0, np.float32))
    np.save(tmp_path / "yv.npy", np.arange(30) % 3)
    seen = []

    def spy(x, names, gen):
        seen.append((len(x), float(x.abs().max()), tuple(names)))
        return aug.augment(x, names, gen)

    monkeypatch.setattr(biosig.training.loop, "augment", spy)
    args = train_parser().parse_args(
        [str(a) for a in ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--x-val", tmp_path / "Xv.npy",
                          "--y-val", tmp_path / "yv.npy", "--model", "shallow", "--model-kwargs", "kernel=9",
                          "pool=9", "stride=3", "--augment", "noise", "mixup", "--epochs", "2", "--batch", "32",
                          "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run"]])
    train(args)
    assert [n for n, _, _ in seen] == [32, 32, 32] * 2
    assert all(m < 50 and names == ("noise", "mixup") for _, m, names in seen)


@pytest.mark.parametrize("model", ["eegnet", "minirocket"])
def test_the_recipe_resumes_bitwise(tmp_path, model):
    """Augmentation, class weights, label smoothing and cosine warm-up: 2 epochs + resume to 4
    end in exactly the weights of 4 uninterrupted epochs."""
    X, y = Classification.example_data(120, 3, 1, 64)
    y[:20] = 0                                              # imbalanced: balanced weights differ from 1
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    base = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", model, *RECIPE, "--deterministic",
            "--batch", "32", "--lr", "1e-3"]
    if model == "minirocket":
        base += ["--model-kwargs", "features=840"]
    whole = run_here("train.py", *base, "--epochs", "4", "--save", tmp_path / "a.pt", "--run-dir", tmp_path / "a")
    half = run_here("train.py", *base, "--epochs", "2", "--save", tmp_path / "b.pt", "--run-dir", tmp_path / "b")
    assert whole.returncode == 0 and half.returncode == 0, whole.stderr[-2000:] + half.stderr[-2000:]
    rest = run_here("train.py", "--resume", tmp_path / "b" / "last.pt", "--epochs", "4")
    assert rest.returncode == 0, rest.stderr[-2000:]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for key in a["model_state"]:
        assert torch.equal(a["model_state"][key], b["model_state"][key]), key
    rows, resumed = ([{k: v for k, v in json.loads(line).items() if k != "seconds"}
                      for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab")
    assert rows == resumed
    # warm-up to 1e-3 over one epoch, then half a cosine over the other three
    lrs = [r["lr"] for r in rows]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3 * 0.75, 1e-3 * 0.25])
    task = a["task"]
    assert task["label_smoothing"] == 0.1
    counts = np.bincount(y)
    assert task["class_weights"] == pytest.approx(len(y) / (3 * counts))


def test_class_weights_and_label_smoothing_shape_the_loss():
    outputs, targets = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    task = Classification(3, label_smoothing=0.2, class_weights=[0.5, 2.0, 2.0])
    log_p, w = torch.log_softmax(outputs, 1), torch.tensor([0.5, 2.0, 2.0])
    # each window: 0.8 of its own class's weighted loss, 0.2 spread evenly over every class's
    expected = (0.8 * w[targets] * -log_p[torch.arange(6), targets] + 0.2 / 3 * (w * -log_p).sum(1)).sum()
    torch.testing.assert_close(task.loss_sum(outputs, targets), expected)


def test_recipe_options_are_checked(tmp_path):
    X, y = Classification.example_data(60, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    base = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--save", tmp_path / "m.pt",
            "--run-dir", tmp_path / "run"]
    for bad, needle in ((["--warmup", "2"], "--schedule cosine"), (["--label-smoothing", "1"], "--label-smoothing"),
                        (["--class-weights", "inverse"], "--class-weights"), (["--augment", "flip"], "--augment"),
                        (["--warmup", "-1"], "--warmup")):
        assert_user_error(run_here("train.py", *base, *bad), needle)
        assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()


@pytest.mark.slow
def test_minirocket_fits_its_transform_once_and_matches_under_torchrun(tmp_path):
    """Biases and feature statistics come from the training windows before epoch 1, travel in the
    checkpoint, and two processes fit and train exactly what one does."""
    X, y = Classification.example_data(130, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    data = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", "minirocket", "--model-kwargs",
            "features=420", "--drop", "0", "--epochs", "2", "--batch", "32", "--deterministic"]
    one = run_here("train.py", *data, "--save", tmp_path / "one.pt", "--run-dir", tmp_path / "one")
    two = torchrun(2, *data, "--save", tmp_path / "two.pt", "--run-dir", tmp_path / "two")
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-2000:] + two.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=True)["model_state"]
    assert bool(a["fitted"]) and a["biases"].abs().sum() > 0 and a["channels"].sum() > 0
    assert a["biases"].numel() == 420
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_val_split_0_trains_on_every_window_and_keeps_the_last_epoch(tmp_path):
    X, y = Classification.example_data(90, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    base = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", "eegnet", "--val-split", "0",
            "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run"]
    for bad in (["--patience", "2"], ["--monitor", "val_acc"]):
        assert_user_error(run_here("train.py", *base, *bad), bad[0], "--val-split 0")
        assert not (tmp_path / "run").exists()
    proc = run_here("train.py", *base, "--epochs", "3", "--batch", "32")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no validation (--val-split 0): train 90" in proc.stdout and "val:" not in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_epoch"] == 3 and summary["split"]["val"] is None
    assert summary["split"]["train"]["windows"] == 90
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_windows"] for r in rows] == [90] * 3 and not any(k.startswith("val_") for k in rows[0])
    assert torch.load(tmp_path / "m.pt", weights_only=True)["epoch"] == 3


def test_the_default_picks_its_model_by_cross_validation(tmp_path):
    """No --model: each candidate is cross-validated on the training windows, the winner trains
    on all of them with its recipe; the guide's command form still trains EEG2Arm; an option on
    the command line beats a model's recipe."""
    from biosig.training.auto import CANDIDATES, FOLDS
    X, y = Classification.example_data(72, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    data = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy"]
    proc = run_here("train.py", *data, "--save", tmp_path / "a.pt", "--run-dir", tmp_path / "a")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    chosen = summary["selection"]["chosen"]
    scores = summary["selection"]["scores"]
    assert set(scores) == set(CANDIDATES) and len(scores["minirocket"]) == FOLDS
    # the gradient candidate runs every fold unless the race decided it earlier (tests/test_select.py)
    assert len(scores["eegnet"]) == FOLDS or summary["selection"]["stopped"]["eegnet"]["after_folds"] < FOLDS
    assert np.mean(scores[chosen]) == max(np.mean(s) for s in scores.values())
    assert np.mean(scores[chosen]) > 0.5                                  # real signal, 3 classes
    assert summary["split"]["val"] is None and summary["split"]["train"]["windows"] == 72
    assert torch.load(tmp_path / "a.pt", weights_only=True)["config"]["name"] == chosen
    assert f"model: {chosen} (chosen by --model auto" in proc.stdout
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["model"] == chosen and config["val_split"] == 0

    recipe = run_here("train.py", *data, "--model", "eegnet", "--epochs", "1", "--save", tmp_path / "b.pt",
                      "--run-dir", tmp_path / "b")
    assert recipe.returncode == 0, recipe.stderr[-2000:]
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["epochs"] == 1                                          # given: beats the recipe's 100
    assert config["lr"] == 6.25e-4 and config["schedule"] == "cosine" and config["standardize"]
    assert config["val_split"] == 0.2                                     # a model's recipe keeps validation

    guide = run_here("train.py", *data, "--elec", "3", "--epochs", "1", "--frame-embed", "16", "--save",
                     tmp_path / "c.pt", "--run-dir", tmp_path / "c")
    assert guide.returncode == 0, guide.stderr[-2000:]
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["model"] == "eeg2arm" and config["lr"] == 3e-4 and config["schedule"] == "plateau"
    assert "model: eeg2arm (the guide's command form (--elec)" in guide.stdout

    assert_user_error(run_here("train.py", *data, "--model-kwargs", "f1=4", "--save", tmp_path / "d.pt"),
                      "--model-kwargs", "--model auto")


def test_cross_validation_folds_keep_classes_balanced_and_groups_whole():
    from biosig.data import kfold_indices
    y = np.repeat([0, 1, 2], [30, 12, 6])
    folds = kfold_indices(y, 3, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(len(y)))               # every window held out once
    for train, h in folds:
        assert not set(train) & set(h)
        assert np.bincount(y[h], minlength=3).tolist() == [10, 4, 2]   # each class dealt out evenly
    groups = np.repeat(np.arange(6), 8)
    for train, h in kfold_indices(y, 3, seed=0, groups=groups):
        assert not set(groups[train]) & set(groups[h]) and len(set(groups[h])) == 2


@pytest.mark.slow
def test_the_default_under_torchrun_chooses_and_trains_what_one_process_does(tmp_path):
    """Each rank cross-validates alone (no collective inside), and all take rank 0's choice."""
    X, y = Classification.example_data(60, 3, 1, 48)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    data = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--drop", "0", "--deterministic"]
    one = run_here("train.py", *data, "--save", tmp_path / "one.pt", "--run-dir", tmp_path / "one")
    two = torchrun(2, *data, "--save", tmp_path / "two.pt", "--run-dir", tmp_path / "two")
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-2000:] + two.stderr[-3000:]
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    timing = ("seconds", "seconds_total", "training_s")
    assert {k: v for k, v in a["selection"].items() if k not in timing} == \
        {k: v for k, v in b["selection"].items() if k not in timing}
    assert b["world_size"] == 2 and b["split"]["train"]["windows"] == 60
