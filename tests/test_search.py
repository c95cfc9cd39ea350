"""sweep.py beyond one grid: cross-validation (--cv K, loso, --nested), random and Optuna search
with resume and pruning, refits over seeds, SLURM job arrays, and bad search spaces."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ENV, ROOT, assert_user_error, run, run_here
from biosig.cli.examples import subjects

EEGNET = ["--model", "eegnet"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write(path, obj):
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


@pytest.fixture
def subj(tmp_path):
    """8 synthetic subjects (60 windows each) whose windows carry patterns of their own; the
    last 2 subjects are kept apart as test data."""
    data = subjects()
    keep = data["groups"] < 6
    np.save(tmp_path / "X.npy", data["X"][keep])
    np.save(tmp_path / "y.npy", data["y"][keep])
    np.save(tmp_path / "groups.npy", data["groups"][keep])
    np.save(tmp_path / "X_test.npy", data["X"][~keep])
    np.save(tmp_path / "y_test.npy", data["y"][~keep])
    return tmp_path


def data_flags(d, *extra, batch=True):
    return ["--", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "groups.npy", *EEGNET,
            *(["--batch", "32"] if batch else []), *extra]


@pytest.mark.slow
def test_loso_is_honest_where_a_random_split_leaks_and_the_refit_reports_test_data(subj):
    d = subj
    grid = write(d / "grid.json", {"lr": [0.003]})
    leaky = run("sweep.py", "--grid", grid, "--out", d / "leaky", "--cv", "4", "--jobs", "2", "--metric", "val_acc",
                *data_flags(d, "--epochs", "20", "--split", "random"))
    assert leaky.returncode == 0, leaky.stdout[-2000:] + leaky.stderr[-2000:]
    honest = run("sweep.py", "--grid", grid, "--out", d / "loso", "--cv", "loso", "--jobs", "2", "--metric", "val_acc",
                 "--refit-seeds", "0", "1", *data_flags(d, "--epochs", "20", "--x-test", d / "X_test.npy",
                                                       "--y-test", d / "y_test.npy"))
    assert honest.returncode == 0, honest.stdout[-2000:] + honest.stderr[-2000:]

    trials = read_csv(d / "loso" / "trials.csv")
    assert sorted(int(t["fold"]) for t in trials) == list(range(6))     # one fold per subject
    for t in trials:        # each fold validates on one subject the fold's model never trained on
        split = json.loads(open(os.path.join(t["run_dir"], "summary.json")).read())["split"]
        assert split["method"] == "group" and split["val"]["groups"] == 1 and split["train"]["groups"] == 5
    loso = json.loads((d / "loso" / "best.json").read_text())
    random_split = json.loads((d / "leaky" / "best.json").read_text())
    assert len(loso["cv"]["folds"]) == 6 and loso["n"] == 6
    # the subjects' own patterns inflate a split that puts a subject on both sides
    assert random_split["mean"] > loso["mean"] + 0.1, (random_split["mean"], loso["mean"])
    assert random_split["report"]["same_data_as_selection"] is True     # flagged: the score chose the point
    assert loso["report"]["same_data_as_selection"] is False and loso["report"]["metric"] == "test acc"
    assert "the best point's score on each fold (val_acc): 0 (group " in honest.stdout
    refit = json.loads((d / "loso" / "refit.json").read_text())
    assert refit["n"] == 2 and refit["test"]["mean"] is not None and refit["seeds"] == [0, 1]
    assert "refit of lr=0.003 over 2 seed(s): test acc" in honest.stdout
    header = (d / "loso" / "folds.csv").read_text().splitlines()[0]
    assert header == "point,lr,fold 0,fold 1,fold 2,fold 3,fold 4,fold 5"


@pytest.mark.slow
def test_nested_cross_validation_chooses_on_inner_folds_and_reports_outer_ones(subj):
    d = subj
    grid = write(d / "grid.json", {"lr": [0.003, 0.00003]})
    proc = run("sweep.py", "--grid", grid, "--out", d / "nested", "--cv", "3", "--nested", "--jobs", "2",
               "--metric", "val_acc", *data_flags(d, "--epochs", "6", "--split", "group"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    trials = read_csv(d / "nested" / "trials.csv")
    assert len(trials) == 2 * 3 * 2 and all(t["fold"] != t["test_fold"] for t in trials)
    report = json.loads((d / "nested" / "best.json").read_text())["report"]
    assert [o["test_fold"] for o in report["outer"]] == [0, 1, 2]
    for o in report["outer"]:       # the reported test is the chosen point's on the held-out fold
        rows = [t for t in trials if t["test_fold"] == str(o["test_fold"]) and t["id"].startswith(o["point"] + "_")]
        assert o["test"] == pytest.approx(np.mean([float(t["test"]) for t in rows]))
    assert report["same_data_as_selection"] is False and "outer fold 2: chose" in proc.stdout


def start_sweep(args, log):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "sweep.py"), *map(str, args)],
                            stdout=log, stderr=log, env=ENV, cwd=ROOT)


def wait_for(condition, timeout=120, what=""):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("search", ["random", "optuna"])
def test_a_search_resumes_after_sigterm_without_running_a_finished_trial_again(subj, search):
    if search == "optuna":
        pytest.importorskip("optuna")
    d = subj
    space = write(d / "space.json", {"lr": {"log": [1e-3, 1e-2]}, "drop": {"uniform": [0, 0.3]},
                                     "batch": {"int": [16, 48, 16]}})
    args = ["--grid", space, "--out", d / "sw", "--search", search, "--trials", "3", "--jobs", "1",
            *data_flags(d, "--epochs", "30", batch=False)]
    with open(d / "log.txt", "a") as log:
        sweep = start_sweep(args, log)
        wait_for(lambda: sweep.poll() is not None or (d / "sw" / "trials.csv").exists() and read_csv(
            d / "sw" / "trials.csv")[0]["status"] == "completed", what="the first trial to complete")
        assert sweep.poll() is None, (d / "log.txt").read_text()
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=60) == 128 + signal.SIGTERM
    first = [t for t in read_csv(d / "sw" / "trials.csv") if t["status"] == "completed"]
    stamps = {t["id"]: os.path.getmtime(os.path.join(t["run_dir"], "summary.json")) for t in first}
    stopped = [t for t in read_csv(d / "sw" / "trials.csv") if t["status"] == "interrupted"]
    assert all(t["error"].startswith("the sweep was stopped by SIGTERM ") for t in stopped), stopped
    continued = any((d / "sw" / "trials" / t["id"] / "run" / "last.pt").exists() for t in stopped)
    again = run("sweep.py", *args)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    # the start lines say what runs: optuna counts points (TPE proposes them as it goes)
    counts = ("optuna: 3 point(s), {} done, {} to run" if search == "optuna" else "3 trials, {} done, {} to run")
    assert counts.format(0, 3) in (d / "log.txt").read_text() and counts.format(1, 2) in again.stdout
    assert ("continues from its last.pt" in again.stdout) == continued, again.stdout
    trials = read_csv(d / "sw" / "trials.csv")
    assert len(trials) == 3 and all(t["status"] == "completed" for t in trials)
    for tid, stamp in stamps.items():       # finished before the SIGTERM: not run again
        assert os.path.getmtime(os.path.join(d / "sw" / "trials" / tid / "run", "summary.json")) == stamp
        assert (d / "sw" / "trials" / tid / "log.txt").read_text().count("$ ") == 1
    for t in trials:                        # every value drawn from the space
        assert 1e-3 <= float(t["lr"]) <= 1e-2 and 0 <= float(t["drop"]) <= 0.3 and t["batch"] in ("16", "32", "48")
    if search == "optuna":
        import optuna
        study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{d / 'sw' / 'optuna.db'}")
        states = [t.state.name for t in study.trials]
        assert states.count("COMPLETE") == 3 and states.count("RUNNING") == 0
        # the study minimizes val_loss: resuming it for val_acc (maximized) would mix the two
        other = run("sweep.py", *args[:args.index("--")], "--metric", "val_acc", *args[args.index("--"):])
        assert_user_error(other, "this study optimizes val_loss (min); the command asks for val_acc (max)")


@pytest.mark.slow
def test_prune_stops_a_clearly_worse_point_and_records_it_as_pruned(subj):
    pytest.importorskip("optuna")
    d = subj
    # three good points (the median rule waits for three), then one that cannot learn (a learning rate of 1e-7)
    grid = write(d / "grid.json", {"lr": [0.003, 0.004, 0.005, 1e-7]})
    proc = run("sweep.py", "--grid", grid, "--out", d / "sw", "--prune", "--jobs", "1", "--no-warm-start",
               *data_flags(d, "--epochs", "40"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    trials = {t["lr"]: t for t in read_csv(d / "sw" / "trials.csv")}
    assert trials["1e-07"]["status"] == "pruned", trials["1e-07"]
    assert all(trials[lr]["status"] == "completed" for lr in ("0.003", "0.004", "0.005"))
    epochs = (d / "sw" / "trials" / "lr=1e-07" / "run" / "metrics.jsonl").read_text().splitlines()
    assert 3 <= len(epochs) < 40
    assert "- (pruned)" in proc.stdout and "failed" not in proc.stderr
    assert {p["point"]: p["pruned"] for p in read_csv(d / "sw" / "summary.csv")}["lr=1e-07"] == "1"


@pytest.mark.slow
def test_a_job_array_runs_trials_independently_and_collect_merges_them(subj):
    d = subj
    grid = write(d / "grid.json", {"lr": [0.003, 0.001]})
    own = ["--grid", grid, "--out", d / "sw", "--cv", "2"]
    flags = data_flags(d, "--epochs", "3")
    script = d / "array.sbatch"
    emitted = run("sweep.py", *own, "--emit-sbatch", script, "--sbatch=--time=00:10:00 --cpus-per-task=1", *flags)
    assert emitted.returncode == 0, emitted.stderr
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text and "#SBATCH --time=00:10:00" in text and '"$SLURM_ARRAY_TASK_ID"' in text
    assert not (d / "sw" / "trials").exists()           # emitting runs nothing

    def task(i):        # what the scheduler does: the script, with the array index in the environment
        return subprocess.Popen(["bash", str(script)], env=dict(ENV, SLURM_ARRAY_TASK_ID=str(i)),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tasks = [task(i) for i in (0, 1, 3)]                # side by side; task 2 "fails to start"
    assert [t.wait(timeout=300) for t in tasks] == [0, 0, 0], [t.stdout.read() for t in tasks]
    collected = run("sweep.py", *own, "--collect", *flags)
    assert collected.returncode == 0, collected.stderr
    assert "1 of 4 trials have not finished" in collected.stdout
    statuses = [t["status"] for t in read_csv(d / "sw" / "trials.csv")]
    assert statuses == ["completed", "completed", "pending", "completed"]
    # emitting again submits only what is left; a finished task's index does nothing
    assert run("sweep.py", *own, "--emit-sbatch", script, *flags).returncode == 0
    assert "#SBATCH --array=2\n" in script.read_text()
    assert task(0).wait(timeout=120) == 0 and task(2).wait(timeout=120) == 0
    collected = run("sweep.py", *own, "--collect", *flags)
    assert [t["status"] for t in read_csv(d / "sw" / "trials.csv")] == ["completed"] * 4
    assert "have not finished" not in collected.stdout and (d / "sw" / "best.json").exists()


BAD = [
    ('{"lr": {"log": [0, 0.1]}}', ["--search", "random", "--trials", "2"], "a log scale needs low > 0"),
    ('{"lr": {"normal": [0, 1]}}', ["--search", "random", "--trials", "2"], "is not a distribution"),
    ('{"batch": {"int": [64, 16]}}', ["--search", "random", "--trials", "2"], "needs low < high"),
    ('{"batch": {"int": [16, 64.5]}}', ["--search", "random", "--trials", "2"], "whole numbers"),
    ('{"lr": {"log": [1e-4, 1e-2]}}', [], "'lr' is a distribution; draw points from it with --search random"),
    ('{"lr": {"log": [1e-4, 1e-2]}}', ["--search", "random"], "--search random needs --trials N"),
    ('{"drop": {"uniform": [0, 1.5]}}', ["--search", "optuna", "--trials", "2"],
     "argument --drop: 1.5 is out of range"),
    ('[{"lr": [0.1]}, {"lr": [0.2]}]', ["--search", "random", "--trials", "2"], "not a list"),
    ('{"lr": [0.1]}', ["--trials", "3"], "--trials goes with --search random or optuna"),
    ('{"lr": [0.1]}', ["--nested"], "--nested goes with --cv K"),
    ('{"lr": [0.1]}', ["--cv", "1"], "cross-validation needs 2 or more folds"),
    ('{"fold": [0, 1]}', ["--cv", "3"], "'fold' is set for each trial by --cv"),
    ('{"lr": [0.1]}', ["--refit-seeds", "0", "1"], "--refit-seeds scores the best point on test data"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--emit-sbatch", "a.sbatch"], "give --workers W"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--emit-sbatch", "a.sbatch", "--workers", "2"],
     "the workers share one study; give --storage"),
    ('{"lr": [0.1]}', ["--prune", "--emit-sbatch", "a.sbatch"], "--prune goes with --search optuna there"),
    ('{"lr": [0.1]}', ["--storage", "journal:j.log"], "--storage holds the study of --search optuna"),
    ('{"lr": [0.1]}', ["--workers", "2"], "--workers W goes with --emit-sbatch and --search optuna"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--heartbeat", "5"], "--heartbeat goes with --storage"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--storage", "redis://h/0"], "expected postgresql://"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--storage", "journal:nodir/j.log"],
     "nodir does not exist"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--storage", "postgresql://me@h:port/db"],
     "--storage postgresql://me@h:port/db: the port is not a number"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--storage", "mysql://me@127.0.0.1:1/db"],
     "--storage mysql:// needs PyMySQL: pip install PyMySQL"),
    ('{"lr": [0.1]}', ["--search", "optuna", "--trials", "2", "--storage", "sqlite:///s.db", "--emit-sbatch",
                       "a.sbatch", "--workers", "2"], "(SQLite, OUT/optuna.db or sqlite:///, locks badly"),
    ('{"lr": [0.1]}', ["--collect"], "no sweep here"),
    ('{"lr": [0.1]}', ["--cv", "3", "X-VAL"], "--x-val and --cv"),
    ('{"lr": [0.1]}', ["--cv", "9", "GROUP"], "has 6 group(s); whole groups cannot make 9 folds"),
    ('{"lr": [0.1]}', ["--cv", "500"], "has 360 windows, fewer than 2 per fold"),
    ('{"drop": {"uniform": [0, 1.1]}}', ["--search", "random", "--trials", "1"], "trial drop=1.1: argument --drop"),
    ('{"lr": [0.1]}', ["--sbatch=--time=1:00:00"], "--sbatch gives #SBATCH options"),
    ('{"lr": [0.1]}', ["--emit-sbatch", "nodir/a.sbatch"], "directory"),
    ('{"lr": [0.1]}', ["--cv", "3", "--nested", "X-TEST"], "--x-test and --nested"),
]


@pytest.mark.parametrize("space, own, needle", BAD, ids=[b[2] for b in BAD])
def test_a_bad_search_is_one_line_and_nothing_is_written(subj, space, own, needle):
    d = subj
    grid = write(d / "space.json", space)
    extra = {"X-VAL": ["--x-val", d / "X_test.npy", "--y-val", d / "y_test.npy"], "GROUP": ["--split", "group"],
             "X-TEST": ["--x-test", d / "X_test.npy", "--y-test", d / "y_test.npy"]}
    after = [a for flag in own if flag in extra for a in extra[flag]]
    own = [flag for flag in own if flag not in extra]
    proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", *own, *data_flags(d, "--epochs", "2", *after))
    assert_user_error(proc, needle)
    assert not (d / "sw").exists() and not (d / "a.sbatch").exists()


def test_cv_loso_needs_groups(subj):
    d = subj
    grid = write(d / "grid.json", {"lr": [0.1]})
    proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", "--cv", "loso", "--", "--x", d / "X.npy", "--y",
                    d / "y.npy", "--epochs", "2")
    assert_user_error(proc, "--cv loso needs the windows' groups after --")


@pytest.mark.slow
def test_a_metric_no_trial_has_stops_the_sweep_at_its_first_trial(subj):
    d = subj
    grid = write(d / "grid.json", {"lr": [0.003, 0.002, 0.001]})
    proc = run("sweep.py", "--grid", grid, "--out", d / "sw", "--metric", "val_accuracy", "--jobs", "1",
               *data_flags(d, "--epochs", "2"))
    assert_user_error(proc, "--metric val_accuracy: not in the trials' summary.json", "val_acc")
    assert len(os.listdir(d / "sw" / "trials")) == 1         # the other two never started
