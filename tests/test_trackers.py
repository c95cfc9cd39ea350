"""--tracker mlflow|tensorboard|wandb: what each logged, read back from its local store; a resumed
run goes on in the same tracker run; only rank 0 logs; a missing package is one line."""
import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import ENV, ROOT, assert_user_error, run, torchrun

TCN = ["--model", "tcn", "--batch", "32", "--lr", "3e-3"]


def val_losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line)["val_loss"] for line in f]


@pytest.mark.slow
def test_mlflow_and_tensorboard_get_the_run_and_its_resume(tmp_path, dataset):
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    env = {k: v for k, v in ENV.items() if not k.startswith("MLFLOW_")}     # MLflow's local default, in cwd
    run_dir = tmp_path / "run"
    flags = ["--tracker", "mlflow", "--tracker", "tensorboard"]
    proc = run("train.py", "--x", dataset["x"], "--y", dataset["y"], *TCN, "--epochs", "2", "--save",
               tmp_path / "c.pt", "--run-dir", run_dir, *flags, cwd=tmp_path, env=env, report=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run("train.py", "--resume", run_dir / "last.pt", "--epochs", "3", *flags, cwd=tmp_path, env=env,
               report=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = val_losses(run_dir)
    assert len(logged) == 3

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("biosig").experiment_id])   # one run, resumed
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    assert found.data.params["lr"] == "0.003" and found.data.params["resolved.task.n_classes"] == "3"
    history = sorted(client.get_metric_history(found.info.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx(logged, rel=1e-6)
    assert found.data.metrics["summary.best"] == pytest.approx(min(logged), rel=1e-6)
    assert {a.path for a in client.list_artifacts(found.info.run_id)} == {"c.pt", "report.png", "report.html"}

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_loss")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("val_loss")] == pytest.approx(logged, rel=1e-5)
    assert "report.png" in events.Tags()["images"] and "config" in "".join(events.Tags()["tensors"])


@pytest.mark.slow
def test_wandb_logs_offline(tmp_path, dataset):
    pytest.importorskip("wandb")
    env = {k: v for k, v in ENV.items() if not k.startswith("WANDB_")}
    proc = run("train.py", "--x", dataset["x"], "--y", dataset["y"], *TCN, "--epochs", "2", "--save",
               tmp_path / "c.pt", "--run-dir", tmp_path / "run", "--tracker", "wandb", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb"))   # offline: no upload
    data = open(record, "rb").read()
    for value in val_losses(tmp_path / "run"):          # each epoch's val_loss, as the run's JSON wrote it
        assert json.dumps(value).encode() in data
    assert b"c.pt" in data                               # the best checkpoint as an artifact


@pytest.mark.slow
def test_only_rank_0_logs(tmp_path, dataset):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    proc = torchrun(2, "--x", dataset["x"], "--y", dataset["y"], *TCN, "--epochs", "2", "--save", tmp_path / "c.pt",
                    "--run-dir", tmp_path / "run", "--tracker", "tensorboard")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (events,) = glob.glob(str(tmp_path / "run" / "tensorboard" / "events.*"))
    acc = EventAccumulator(events)
    acc.Reload()
    assert [e.step for e in acc.Scalars("train_loss")] == [1, 2]


@pytest.mark.slow
def test_parallel_sweep_trials_share_one_new_mlflow_store(tmp_path, dataset):
    """Two trials starting at once on a new local MLflow database (its creation is locked)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    env = {k: v for k, v in ENV.items() if not k.startswith("MLFLOW_")}
    (tmp_path / "grid.json").write_text(json.dumps({"lr": [0.003, 0.001]}))
    proc = run("sweep.py", "--grid", tmp_path / "grid.json", "--out", tmp_path / "sw", "--jobs", "2", "--",
               "--x", dataset["x"], "--y", dataset["y"], *TCN[:2], "--epochs", "1", "--tracker", "mlflow",
               cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("biosig").experiment_id])
    assert sorted(r.data.params["lr"] for r in found) == ["0.001", "0.003"]
    assert all(r.info.status == "FINISHED" for r in found)


def test_a_tracker_that_cannot_start_is_one_line_and_leaves_nothing(tmp_path, dataset):
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    env = dict(ENV, MLFLOW_TRACKING_URI="http://127.0.0.1:9")        # nothing answers there
    proc = run("train.py", "--x", dataset["x"], "--y", dataset["y"], "--epochs", "1", "--save", tmp_path / "c.pt",
               "--run-dir", tmp_path / "run", "--tracker", "tensorboard", "--tracker", "mlflow", env=env)
    assert_user_error(proc, "--tracker mlflow", "cannot start its run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "c.pt").exists()    # tensorboard's files too


def test_a_tracker_whose_package_is_missing_is_one_line_and_nothing_is_written(tmp_path, dataset):
    blocked = ("import sys, runpy; sys.modules['wandb'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", blocked, os.path.join(ROOT, "train.py"), "--x", dataset["x"],
                           "--y", dataset["y"], "--epochs", "1", "--save", str(tmp_path / "c.pt"),
                           "--run-dir", str(tmp_path / "run"), "--tracker", "wandb"], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=300)
    line = assert_user_error(proc, "--tracker wandb", "pip install wandb")
    assert "biosig[" not in line          # PyPI's `biosig` is another project: never point pip at it
    assert not (tmp_path / "run").exists() and not (tmp_path / "c.pt").exists()
    assert_user_error(run("train.py", "--x", dataset["x"], "--y", dataset["y"], "--save", tmp_path / "c.pt",
                          "--tracker", "comet"), "--tracker", "comet")
