"""Every registered model x task through train.py -> checkpoint -> infer.py, as a user runs them.

A new model or task is tested by being registered: nothing here names one. The commands run
in-process (conftest.run_here: main(argv) through errors.run_cli); the fast tier (-m "not slow")
runs one model of each test, the full suite every one."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from biosig.models import MODELS as REGISTERED
from biosig.tasks import TASKS
from conftest import assert_user_error, run_here, slow_after, slow_except

# models of one input; the fusion models (several inputs) are tested in tests/test_fusion.py
MODELS = {n: m for n, m in REGISTERED.items() if not getattr(m, "multi_input", False)}

ROOT_DIR = Path(__file__).resolve().parent.parent

PAIRS = [(m, t) for m in sorted(MODELS) for t in sorted(TASKS) if TASKS[t].model_problem(MODELS[m]) is None]
REFUSED = [(m, t) for m in sorted(MODELS) for t in sorted(TASKS) if TASKS[t].model_problem(MODELS[m]) is not None]


@pytest.mark.parametrize("model, task", slow_after(PAIRS))
def test_model_task_trains_checkpoints_and_infers(tmp_path, model, task):
    X, y = TASKS[task].example_data(96, 3, 2, 128)     # T=128: above every model's minimum
    np.save(tmp_path / "X.npy", X)
    targets = []                                        # pretraining has none
    if y is not None:
        np.save(tmp_path / "y.npy", y)
        targets = ["--y", tmp_path / "y.npy"]
    proc = run_here("train.py", "--x", tmp_path / "X.npy", *targets, "--model", model, "--task", task,
                    "--epochs", "2", "--batch", "32", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["config"]["name"] == model and ckpt["task"]["name"] == task
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_row"]["epoch"] == summary["best_epoch"]
    # infer.py from the checkpoint alone gives what the Python API gives in-process
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", "--x", tmp_path / "X.npy", *targets,
                   "--out", tmp_path / "p.npy", "--quiet")
    assert inf.returncode == 0, inf.stderr[-3000:]
    from biosig.deploy.predictor import load_model_from_checkpoint
    expected = load_model_from_checkpoint(str(tmp_path / "m.pt")).predict(X)["values"]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-4, atol=1e-5)
    # windows of another length: refused in one line by a model built for one T, else one warning
    np.save(tmp_path / "X_long.npy", np.concatenate([X, X], axis=3)[:8])
    other = run_here("infer.py", "--ckpt", tmp_path / "m.pt", "--x", tmp_path / "X_long.npy", "--quiet")
    if getattr(MODELS[model], "fixed_frames", False):
        assert_user_error(other, "X_long.npy", "T=128", "T=256")
    else:
        assert other.returncode == 0 and other.stderr.count("warning:") == 1, other.stderr


@pytest.mark.parametrize("model, task", REFUSED)       # in-process, milliseconds each: every pair in the fast tier
def test_a_task_a_model_cannot_learn_is_refused_in_one_line(tmp_path, model, task):
    X, y = TASKS[task].example_data(40, 3, 1, 64)
    np.save(tmp_path / "X.npy", X)
    targets = []
    if y is not None:
        np.save(tmp_path / "y.npy", y)
        targets = ["--y", tmp_path / "y.npy"]
    proc = run_here("train.py", "--x", tmp_path / "X.npy", *targets, "--model", model, "--task", task, "--save",
                    tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    fit = [m for m in sorted(MODELS) if TASKS[task].model_problem(MODELS[m]) is None]
    assert_user_error(proc, f"--task {task}", model, *fit)
    assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("model", slow_after(sorted(MODELS)))
def test_model_options_are_declared_checked_and_stored(tmp_path, model):
    """--model-kwargs reaches the constructor, lands in the checkpoint, and a wrong name or
    value is one line and exit 2."""
    cls = MODELS[model]
    X, y = TASKS["classification"].example_data(64, 3, 1, 128)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    base = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", model, "--epochs", "1",
            "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run"]
    assert_user_error(run_here("train.py", *base, "--model-kwargs", "no_such_option=1"), "no_such_option",
                      f"--model {model}")
    assert not (tmp_path / "run").exists() and not (tmp_path / "m.pt").exists()
    name = cls.options[0].name
    assert_user_error(run_here("train.py", *base, "--model-kwargs", f"{name}=1", f"{name}=2"), name, "given twice")
    integer = next(o for o in cls.options if o.flag is None and isinstance(o.default, int))
    assert_user_error(run_here("train.py", *base, "--model-kwargs", f"{integer.name}=-3"), integer.name, "-3")
    listing = run_here("train.py", "--model", "help")
    assert listing.returncode == 0 and f"{model}: " in listing.stdout
    assert all(f"{opt.name}=" in listing.stdout for opt in cls.options)
    proc = run_here("train.py", *base, "--model-kwargs", f"{integer.name}={integer.default + 1}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp_path / "m.pt", weights_only=True)["config"][integer.name] == integer.default + 1


def test_a_checkpoint_of_biosig_0_1_0_still_loads(tmp_path):
    """tests/data/v0_1_0.pt was written by biosig 0.1.0 (class names beside the task entry,
    --normalize, eeg2arm): infer.py still reads it and predicts exactly what 0.1.0 predicted."""
    from conftest import ROOT, make_windows
    X, y = make_windows(n=60)                            # the windows 0.1.0 trained and predicted on
    np.save(tmp_path / "X.npy", X)
    ckpt = f"{ROOT}/tests/data/v0_1_0.pt"
    inf = run_here("infer.py", "--ckpt", ckpt, "--x", tmp_path / "X.npy", "--out", tmp_path / "p.npy")
    assert inf.returncode == 0, inf.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), np.load(f"{ROOT}/tests/data/v0_1_0_preds.npy"),
                               rtol=1e-5, atol=1e-6)
    assert "(left)" in inf.stdout or "(rest)" in inf.stdout or "(right)" in inf.stdout   # its class names


MAIN_FIXTURES = sorted(f.name[:-3] for f in (ROOT_DIR / "tests" / "data").glob("main_*.pt"))


@pytest.mark.parametrize("name", MAIN_FIXTURES)
def test_a_checkpoint_of_main_before_the_redesign_predicts_bitwise_the_same(tmp_path, name):
    """tests/data/main_<task>_<model>.pt were written at d4ddf1b, before the package was
    reorganised (tests/data/make_main_fixtures.py), one per task and one per closed-form model:
    infer.py gives exactly the predictions it gave then."""
    from biosig.cli.infer import main
    data = ROOT_DIR / "tests" / "data"
    main(["--ckpt", str(data / f"{name}.pt"), "--x", str(data / f"{name}_X.npy"), "--out", str(tmp_path / "p.npy"),
          "--quiet"])
    got, want = np.load(tmp_path / "p.npy"), np.load(data / f"{name}_preds.npy")
    assert got.dtype == want.dtype and np.array_equal(got, want), name


def test_inference_imports_no_training_code(tmp_path):
    """infer.py (and the Predictor) must not pull in the run, the loop or DDP."""
    import subprocess
    import sys
    from conftest import ENV, ROOT
    code = ("import sys, infer; infer.main(['--ckpt', 'tests/data/v0_1_0.pt', '--x', sys.argv[1], '--quiet']); "
            "print(sorted(m for m in sys.modules if m.startswith('biosig')))")
    X, _ = TASKS["classification"].example_data(4, 3, 1, 32)
    np.save(tmp_path / "X.npy", X)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "X.npy")], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.strip().splitlines()[-1]
    assert "'biosig.deploy.predictor'" in loaded
    for prefix in ("biosig.training", "biosig.sweep"):
        assert f"'{prefix}'" not in loaded and f"'{prefix}." not in loaded, prefix


@pytest.mark.parametrize("model, f", slow_except([(m, f) for m in sorted(MODELS) for f in (1, 2)], ("shallow", 1)))
def test_every_model_learns_a_task_with_real_signal(tmp_path, model, f):
    """Raw time (F=1) and band rows (F=2): validation accuracy well above chance (1/3)."""
    X, y = TASKS["classification"].example_data(240, 3, f, 128)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    proc = run_here("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", model, "--epochs", "6",
                    "--batch", "32", "--lr", "3e-3", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_metrics"]["acc"] > 0.6, (model, f, summary["best_metrics"]["acc"])


@pytest.mark.parametrize("model", sorted(m for m in MODELS if MODELS[m].per_frame))
def test_per_frame_models_are_causal(model):
    """forward_seq for streaming: changing the last input frame changes only the last output
    frame, and forward() is the last frame of forward_seq()."""
    from biosig.models import build_model
    torch.manual_seed(0)
    net = build_model({"name": model, "n_elec": 3, "n_bands": 2, "n_outputs": 4, "drop": 0.0}).eval()
    x = torch.randn(2, 3, 2, 64)
    late = x.clone()
    late[..., -1] += 5.0
    with torch.no_grad():
        a, b = net.forward_seq(x), net.forward_seq(late)
        torch.testing.assert_close(net(x), a[:, -1])
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def _minimum_frames(model):
    """The shortest T a model built with its defaults accepts, from its own input_problem."""
    from biosig.models import build_model
    for t in range(1, 513):
        config = {"name": model, "n_elec": 3, "n_bands": 1, "n_outputs": 3, "drop": 0.1}
        if getattr(MODELS[model], "fixed_frames", False):
            config["n_times"] = t
        if build_model(config).input_problem(3, 1, t) is None:
            return t
    raise AssertionError(f"{model}: no T up to 512 fits")


@pytest.mark.parametrize("model", slow_after(sorted(MODELS)))
def test_every_model_trains_at_its_minimum_length_and_refuses_one_frame_less(tmp_path, model):
    """At the shortest T its input_problem accepts, a model trains and infers (learning is
    tested above at T=128, where a sinusoid can be told apart); one frame less is one line."""
    t = _minimum_frames(model)
    X, y = TASKS["classification"].example_data(40, 3, 1, t)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    args = ["--y", tmp_path / "y.npy", "--model", model, "--epochs", "1", "--batch", "16", "--save", tmp_path / "m.pt"]
    proc = run_here("train.py", "--x", tmp_path / "X.npy", *args, "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, (t, proc.stderr[-2000:])
    inf = run_here("infer.py", "--ckpt", tmp_path / "m.pt", "--x", tmp_path / "X.npy", "--quiet", "--out", tmp_path / "p.npy")
    assert inf.returncode == 0 and np.isfinite(np.load(tmp_path / "p.npy")).all(), inf.stderr
    if t > 1:
        np.save(tmp_path / "X_short.npy", X[..., :t - 1])
        (tmp_path / "m.pt").unlink()
        short = run_here("train.py", "--x", tmp_path / "X_short.npy", *args, "--run-dir", tmp_path / "run2")
        assert_user_error(short, "X_short.npy", f"T={t - 1}")
        assert not (tmp_path / "run2").exists() and not (tmp_path / "m.pt").exists()
