"""biosig.train(...): train.py as a Python call, on train.py's own path (its parser, resolve, run)."""
import json
import os

import numpy as np
import pytest

import biosig
from biosig.errors import UserError
from biosig.tasks import TASKS

QUICK = {"model": "minirocket", "val_split": 0.25, "no_report": True}     # a head solved in closed form: seconds


@pytest.fixture(scope="module")
def windows():
    """(X (120, 3, 1, 64), y (120,)) with real signal, and 60 held-out windows of the same kind."""
    X, y = TASKS["classification"].example_data(180, 3, 1, 64)
    return X[:120], y[:120], X[120:], y[120:]


def test_arrays_train_a_model_whose_checkpoint_predicts_above_chance(windows, tmp_path):
    from biosig.inference import load_model_from_checkpoint
    X, y, X_held, y_held = windows
    summary = biosig.train(x=X, y=y, save=tmp_path / "m.pt", run_dir=tmp_path / "run", **QUICK)
    assert summary["status"] == "completed" and summary["checkpoint"] == str(tmp_path / "m.pt")
    assert summary["best_metrics"]["acc"] > 0.6                  # chance is 1/3
    with open(tmp_path / "run" / "summary.json") as f:           # what summary.json holds
        assert json.load(f)["best_metrics"] == summary["best_metrics"]
    predicted = load_model_from_checkpoint(summary["checkpoint"]).predict(X_held)["pred"]
    assert (predicted == y_held).mean() > 0.6
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "run"]        # the arrays' temporary files are gone


def test_paths_train_the_same_run_as_arrays(windows, tmp_path):
    X, y, _, _ = windows
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    from_paths = biosig.train(x=str(tmp_path / "X.npy"), y=tmp_path / "y.npy", save=tmp_path / "a.pt",
                              run_dir=tmp_path / "a", **QUICK)
    from_arrays = biosig.train(x=X, y=y, save=tmp_path / "b.pt", run_dir=tmp_path / "b", **QUICK)
    assert from_paths["best_metrics"] == from_arrays["best_metrics"] and from_paths["split"] == from_arrays["split"]


@pytest.mark.parametrize("flags, needle", [
    ({"epoch": 5}, "train(epoch=...): not an option of train.py (did you mean epochs?)"),
    ({"lr": -1}, "--lr"),
    ({"task": "nonsense"}, "--task"),
    ({"standardize": "yes"}, "give True or False"),
    ({"model_kwargs": {"nope": 1}}, "--model-kwargs nope"),
])
def test_a_bad_flag_is_one_line_and_nothing_is_written(windows, tmp_path, flags, needle):
    X, y, _, _ = windows
    with pytest.raises(UserError) as e:
        biosig.train(x=X, y=y, save=tmp_path / "m.pt", run_dir=tmp_path / "run", **{**QUICK, **flags})
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert os.listdir(tmp_path) == []


def test_bad_arrays_are_named_as_the_user_gave_them(windows, tmp_path):
    """(N, C, T) windows get the line that says how to make them (N, C, F, T); a bad array's
    message names train(y=<array>), not the temporary file it went through."""
    X, y, _, _ = windows
    out = {"save": tmp_path / "m.pt", "run_dir": tmp_path / "run", **QUICK}
    with pytest.raises(UserError, match=r"train\(x=<array>\): expected windows \(N, C, F, T\), got shape "
                                         r"\(120, 3, 64\); raw windows \(N, C, T\) are x\[:, :, None, :\]"):
        biosig.train(x=X[:, :, 0], y=y, **out)
    with pytest.raises(UserError, match=r"^train\(y=<array>\): 60 labels but train\(x=<array>\) has 120 windows$"):
        biosig.train(x=X, y=y[:60], **out)
    assert os.listdir(tmp_path) == []


def test_importing_biosig_loads_no_torch_and_the_training_code_never_hides_biosig_train():
    import subprocess
    import sys
    code = ("import sys, biosig; assert callable(biosig.train); assert 'torch' not in sys.modules; "
            "import biosig.training.run, biosig.cli.train; assert callable(biosig.train)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_resolved_run_is_frozen_and_changes_only_into_a_new_config():
    import dataclasses
    from biosig.training.options import explicit_options, train_parser
    from biosig.training.resolve import resolve
    argv = ["--x", "X.npy", "--y", "y.npy", "--save", "m.pt", "--model", "eegnet", "--lr", "0.01"]
    parser = train_parser()
    cfg = resolve(parser.parse_args(argv), explicit_options(parser, argv))
    assert cfg.flags.x == os.path.abspath("X.npy")                              # paths made absolute
    assert cfg.flags.schedule == "cosine" and cfg.flags.lr == 0.01               # eegnet's recipe under the flags
    with pytest.raises(AttributeError):
        cfg.flags.lr = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.monitor = "val_acc"
    changed = cfg.with_flags(lr=1.0)
    assert changed.flags.lr == 1.0 and cfg.flags.lr == 0.01 and changed.monitor == cfg.monitor
