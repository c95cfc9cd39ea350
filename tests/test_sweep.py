"""sweep.py run as a user runs it: results, resume after SIGTERM/SIGKILL, failures, timeouts, bad grids."""
import csv
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ENV, FAST, ROOT, assert_user_error, make_windows, run, run_here


def without(flags, *names):
    """FAST minus some options (those the grid varies)."""
    out, i = [], 0
    while i < len(flags):
        if flags[i].lstrip("-") in names:
            i += 2
            continue
        out.append(flags[i])
        i += 1
    return out


def train_flags(dataset, *extra, vary=()):
    return ["--", "--x", dataset["x"], "--y", dataset["y"], *without(FAST, *vary), *extra]


def write_grid(path, grid):
    path.write_text(grid if isinstance(grid, str) else json.dumps(grid))
    return str(path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def processes_mentioning(text):
    """pids of live processes whose command line contains `text` (zombies have none), among those
    this pytest process started: under pytest-xdist (-n) another worker's sweeps run beside this
    one, and its processes carry that worker's PYTEST_XDIST_WORKER, not ours."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text not in f.read().decode(errors="replace"):
                    continue
            if worker is not None:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if f"PYTEST_XDIST_WORKER={worker}".encode() not in f.read().split(b"\0"):
                        continue
            pids.append(int(pid))
        except OSError:
            pass
    return pids


def wait_for(condition, timeout=120, what=""):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_grid_with_seeds_in_parallel_writes_results_and_a_rerunnable_best(dataset):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [3e-3, 1e-3], "batch": [32, 64]})
    args = ["--grid", grid, "--out", d / "sw", "--jobs", 2, "--seeds", 0, 1,
            *train_flags(dataset, "--epochs", 2, vary=("lr", "batch"))]
    proc = run("sweep.py", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # threads per trial: cores // jobs, capped by the OMP_NUM_THREADS=1 the tests run with
    assert "8 trials, 0 done, 8 to run | jobs 2, 1 thread each" in proc.stdout
    assert sum(line.startswith("[") and "completed" in line for line in proc.stdout.splitlines()) == 8
    assert "rank" in proc.stdout and "val_loss (min)" in proc.stdout

    trials = read_csv(d / "sw" / "trials.csv")
    assert len(trials) == 8 and len({t["id"] for t in trials}) == 8
    assert {(t["lr"], t["batch"], t["seed"]) for t in trials} == {
        (lr, b, s) for lr in ("0.003", "0.001") for b in ("32", "64") for s in ("0", "1")}
    assert "lr=0.003_batch=32_seed=0" not in {t["id"] for t in trials}       # flags sorted in ids
    assert "batch=32_lr=0.003_seed=0" in {t["id"] for t in trials}
    best_values = {}
    for t in trials:
        assert t["status"] == "completed" and t["exit_code"] == "0" and t["error"] == "", t
        summary = json.loads(open(os.path.join(t["run_dir"], "summary.json")).read())
        assert float(t["objective"]) == pytest.approx(summary["best"], rel=1e-5)
        assert int(t["best_epoch"]) == summary["best_epoch"] and float(t["samples_per_s"]) > 0
        assert float(t["wall_s"]) > 0
        best_values[t["id"]] = summary["best"]
        trial_dir = os.path.dirname(t["run_dir"])
        assert os.path.exists(os.path.join(trial_dir, "best.pt"))
        assert "[epoch 002]" in open(os.path.join(trial_dir, "log.txt")).read()

    points = read_csv(d / "sw" / "summary.csv")
    assert len(points) == 4 and [p["rank"] for p in points] == ["1", "2", "3", "4"]
    means = [float(p["mean"]) for p in points]
    assert means == sorted(means)                                            # val_loss: lower is better
    for p in points:
        values = [best_values[f"{p['point']}_seed={s}"] for s in (0, 1)]
        assert p["n"] == "2" and p["failed"] == "0"
        assert float(p["mean"]) == pytest.approx(np.mean(values), rel=1e-5)
        assert float(p["std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-4, abs=1e-7)

    best = json.loads((d / "sw" / "best.json").read_text())
    assert best["point"] == points[0]["point"] and best["metric"] == "val_loss" and best["mode"] == "min"
    assert best["objective"] == min(best_values[f"{best['point']}_seed={s}"] for s in (0, 1))
    assert os.path.exists(best["checkpoint"]) and shlex.split(best["command"]) == best["argv"]
    # the ready command re-runs the best trial, from anywhere, with the same result
    rerun = subprocess.run(best["argv"], cwd=d, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    (run_dir,) = (d / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["best"] == pytest.approx(best["objective"], abs=1e-5)

    # the same command again: everything is done, nothing runs
    stamps = {t["id"]: os.path.getmtime(os.path.join(t["run_dir"], "summary.json")) for t in trials}
    again = run("sweep.py", *args)
    assert again.returncode == 0 and "8 trials, 8 done, 0 to run" in again.stdout
    assert stamps == {t["id"]: os.path.getmtime(os.path.join(t["run_dir"], "summary.json")) for t in trials}


@pytest.mark.slow
def test_ctrl_c_sigterm_and_sigkill_leave_no_trial_running_and_resume_runs_nothing_twice(dataset, tmp_path):
    d = dataset["dir"]
    out = d / "sw"
    # the long trial has epochs enough that a SIGKILL after its first one lands before its last, also
    # when another pytest worker shares the CPUs (at 8 it once finished before the kill arrived)
    grid = write_grid(d / "grid.json", {"epochs": [2, 40]})
    cmd = [sys.executable, os.path.join(ROOT, "sweep.py"), "--grid", grid, "--out", str(out), "--jobs", "1",
           *map(str, train_flags(dataset))]
    short, long = out / "trials" / "epochs=2", out / "trials" / "epochs=40"

    def start():
        log = open(tmp_path / "sweep.log", "a")
        return subprocess.Popen(cmd, stdout=log, stderr=log, env=ENV, cwd=ROOT)

    # 1) Ctrl-C, then SIGTERM, while the first trial starts: it is stopped, recorded as
    #    interrupted, exit 128 + signal; the next run moves the unfinished attempt aside
    for signum, moved in ((signal.SIGINT, None), (signal.SIGTERM, "epochs=2.1")):
        sweep = start()
        if moved:
            wait_for(lambda: (out / "previous" / moved).is_dir(), what="the interrupted attempt moved aside")
        wait_for(lambda: (short / "trial.json").exists(), what="the first trial to start")
        sweep.send_signal(signum)
        assert sweep.wait(timeout=60) == 128 + signum
        assert json.loads((short / "trial.json").read_text())["status"] == "interrupted"
        row = read_csv(out / "trials.csv")[0]
        assert row["status"] == "interrupted"
        # the sweep was stopped, not the trial: the same sweep command resumes it (no train.py --resume by hand)
        assert row["error"].startswith(f"the sweep was stopped by {signal.Signals(signum).name} ")
        assert "run the same sweep command" in row["error"] and "--resume" not in row["error"]
        assert processes_mentioning(str(out)) == [] and processes_mentioning("biosig.sweep.warm") == []

    # 2) again; while it runs a second sweep is refused; SIGKILL once the long trial saved an
    #    epoch: the kernel stops that trial too
    sweep = start()
    wait_for(lambda: (out / "previous" / "epochs=2.2").is_dir(), what="the interrupted attempt moved aside")
    second = run("sweep.py", *cmd[2:])
    assert_user_error(second, str(out), f"another sweep (pid {sweep.pid}) is running")
    wait_for(lambda: (long / "run" / "last.pt").exists(), what="the long trial's first epoch")
    sweep.kill()
    sweep.wait(timeout=60)
    wait_for(lambda: processes_mentioning(str(out)) == [] and processes_mentioning("biosig.sweep.warm") == [],
             timeout=10, what="orphaned trials and spares to die")
    assert not (long / "run" / "summary.json").exists()
    done_stamp = os.path.getmtime(short / "run" / "summary.json")
    done_log = (short / "log.txt").read_text()

    # 3) resume: the completed trial is skipped, the long one continues from its last.pt
    sweep = start()
    assert sweep.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    starts = [l for l in (tmp_path / "sweep.log").read_text().splitlines() if l.startswith("sweep ")]
    assert "2 trials, 1 done, 1 to run (1 continues from its last.pt) |" in starts[-1], starts
    # wall_s: both attempts of the long trial, also the one the SIGKILLed sweep could not record
    state = json.loads((long / "trial.json").read_text())
    assert len(state["attempts_s"]) == 2 and state["wall_s"] == pytest.approx(sum(state["attempts_s"]), abs=2e-3)
    assert float(read_csv(out / "trials.csv")[1]["wall_s"]) == pytest.approx(state["wall_s"], abs=0.01)
    assert os.path.getmtime(short / "run" / "summary.json") == done_stamp
    assert (short / "log.txt").read_text() == done_log
    log = (long / "log.txt").read_text()
    commands = [line for line in log.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and "--resume" not in commands[0] and "--resume" in commands[1]
    assert "resuming after epoch" in log
    epochs = [json.loads(line)["epoch"] for line in (long / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))
    assert [t["status"] for t in read_csv(out / "trials.csv")] == ["completed", "completed"]


@pytest.mark.slow
def test_warm_started_trials_train_exactly_as_fresh_processes_and_none_is_left(dataset):
    """Trials forked from the warm process (torch imported once) train what `python train.py`
    trains, and neither it nor a trial outlives the sweep."""
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [3e-3, 1e-3, 2e-3]})
    results = {}
    for name, extra in (("warm", []), ("cold", ["--no-warm-start"])):
        proc = run("sweep.py", "--grid", grid, "--out", d / name, *extra,
                   *train_flags(dataset, "--epochs", 2, vary=("lr",)))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        trials = read_csv(d / name / "trials.csv")
        results[name] = {t["id"]: float(t["objective"]) for t in trials}
        warm = [json.loads((d / name / "trials" / t["id"] / "trial.json").read_text())["warm"] for t in trials]
        assert warm == [name == "warm"] * 3
        log = (d / name / "trials" / trials[-1]["id"] / "log.txt").read_text()
        assert log.startswith("$ ") and "[epoch 002]" in log
    assert results["warm"] == results["cold"]
    assert processes_mentioning("biosig.sweep.warm") == []


@pytest.mark.slow
def test_a_failing_trial_is_recorded_the_others_go_on_and_retry_failed_reruns_it(dataset):
    d = dataset["dir"]
    names = d / "names.json"                     # missing at first: train.py refuses it (exit 2)
    grid = write_grid(d / "grid.json", {"class-names": [None, str(names)]})
    args = ["--grid", grid, "--out", d / "sw", "--jobs", 2, *train_flags(dataset, "--epochs", 1)]
    proc = run("sweep.py", *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 of 2 trials failed" in proc.stderr
    ok, bad = sorted(read_csv(d / "sw" / "trials.csv"), key=lambda t: t["class-names"] != "null")
    assert ok["status"] == "completed" and ok["objective"]
    assert bad["status"] == "failed" and bad["exit_code"] == "2" and "names.json" in bad["error"]
    assert "error: " in bad["error"] and bad["objective"] == ""
    point = {p["class-names"]: p for p in read_csv(d / "sw" / "summary.csv")}[str(names)]
    assert point["n"] == "0" and point["failed"] == "1" and point["rank"] == "2"
    ok_stamp = os.path.getmtime(os.path.join(ok["run_dir"], "summary.json"))

    # without --retry-failed a failed trial stays failed
    again = run("sweep.py", *args)
    assert again.returncode == 1 and "0 to run, 1 failed kept (re-run them with --retry-failed)" in again.stdout

    names.write_text(json.dumps(["a", "b", "c"]))
    retried = run("sweep.py", "--retry-failed", *args)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "2 trials, 1 done, 1 to run" in retried.stdout
    assert [t["status"] for t in read_csv(d / "sw" / "trials.csv")] == ["completed", "completed"]
    assert os.path.getmtime(os.path.join(ok["run_dir"], "summary.json")) == ok_stamp
    assert (d / "sw" / "previous" / f"{bad['id']}.1" / "log.txt").exists()     # the failed attempt, kept

    # another --metric re-ranks the finished sweep without running anything; a wrong one is refused
    reranked = run("sweep.py", "--metric", "val_acc", *args)
    assert reranked.returncode == 0 and "0 to run" in reranked.stdout and "val_acc (max)" in reranked.stdout
    assert json.loads((d / "sw" / "best.json").read_text())["metric"] == "val_acc"
    for t in read_csv(d / "sw" / "trials.csv"):
        summary = json.loads(open(os.path.join(t["run_dir"], "summary.json")).read())
        assert float(t["objective"]) == pytest.approx(summary["best_metrics"]["acc"], rel=1e-5)
    assert_user_error(run("sweep.py", "--metric", "val_bogus", *args), "--metric val_bogus", "f1")


def write_subjects(directory, names, n=96):
    """One subject's X.npy / y.npy per name, each its own recording (seed): {name: (x, y)}."""
    files = {}
    for seed, name in enumerate(names):
        X, y = make_windows(n=n, seed=seed)
        np.save(directory / f"{name}_X.npy", X)
        np.save(directory / f"{name}_y.npy", y)
        files[name] = (str(directory / f"{name}_X.npy"), str(directory / f"{name}_y.npy"))
    return files


@pytest.mark.slow
def test_a_grid_over_data_files_trains_one_model_per_subject(tmp_path):
    subjects = write_subjects(tmp_path, ["subj01", "subj02"])
    # x varies with y: a list of grids, one per subject, with paths relative to where sweep.py runs
    grid = write_grid(tmp_path / "grid.json", [{"x": [f"{name}_X.npy"], "y": [f"{name}_y.npy"]}
                                               for name in subjects])
    args = ["--grid", grid, "--out", "sw", "--jobs", 2, "--", *FAST, "--epochs", 1]
    proc = run("sweep.py", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = read_csv(tmp_path / "sw" / "trials.csv")
    assert [(t["x"], t["y"], t["status"]) for t in trials] == [(x, y, "completed") for x, y in subjects.values()]
    for t, (name, (x, y)) in zip(trials, subjects.items()):
        assert t["id"].startswith(f"x={name}_X.npy_y={name}_y.npy-")       # the file names, not the paths
        config = json.loads(open(os.path.join(t["run_dir"], "config.json")).read())
        assert (config["x"], config["y"]) == (x, y)
    # the same command again: the same ids, nothing runs
    again = run("sweep.py", *args, cwd=tmp_path)
    assert again.returncode == 0 and "2 trials, 2 done, 0 to run" in again.stdout


def test_a_grid_value_naming_a_missing_file_is_a_failed_trial_and_the_other_goes_on(dataset):
    d = dataset["dir"]
    missing = str(d / "subj02_X.npy")
    grid = write_grid(d / "grid.json", {"x": [dataset["x"], missing]})
    proc = run("sweep.py", "--grid", grid, "--out", d / "sw", "--jobs", 2,
               "--", "--y", dataset["y"], *FAST, "--epochs", 1)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 of 2 trials failed" in proc.stderr and "Traceback" not in proc.stderr
    ok, bad = read_csv(d / "sw" / "trials.csv")
    assert (ok["x"], ok["status"], ok["exit_code"]) == (dataset["x"], "completed", "0")
    assert (bad["x"], bad["status"], bad["exit_code"], bad["objective"]) == (missing, "failed", "2", "")
    assert bad["error"].startswith("error: ") and missing in bad["error"]        # train.py's one line


def test_a_missing_path_after_dashdash_is_refused_before_anything_starts(dataset):
    """Each path flag after -- (one test: the sweep's one check of train.py's path flags, in-process)."""
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [1e-3, 3e-3]})
    for flag in ["--x", "--y", "--groups=", "--x-val", "--class-names"]:
        missing = str(d / "data" / ("names.json" if flag == "--class-names" else "nope.npy"))
        given = {"--x": dataset["x"], "--y": dataset["y"], flag: missing}
        if flag == "--x-val":
            given["--y-val"] = dataset["y"]
        flags = [word for name, value in given.items()
                 for word in ([name + value] if name.endswith("=") else [name, value])]
        proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", "--", *flags, *without(FAST, "lr"),
                        "--epochs", 1)
        assert_user_error(proc, flag.rstrip("="), missing, "no such file")
        assert not (d / "sw").exists()


def test_x_and_y_may_come_from_the_grid_and_a_parquet_x_needs_no_y(dataset):
    d = dataset["dir"]
    (d / "w.parquet").write_bytes(b"")       # a dry run reads no data: only the name matters
    grid = write_grid(d / "grid.json", {"lr": [1e-3]})
    for labels in ([], ["--y", "subject_label"]):      # the label column (default: --label-col), not a file
        proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", "--dry-run", "--", "--x", d / "w.parquet", *labels)
        assert proc.returncode == 0, proc.stderr
    both = write_grid(d / "both.json", [{"x": ["a.parquet"]}, {"x": ["b_X.npy"], "y": ["b_y.npy"]}])
    proc = run_here("sweep.py", "--grid", both, "--out", d / "sw", "--dry-run", "--", "--epochs", 1)
    assert proc.returncode == 0 and proc.stdout.count("train.py") == 2, proc.stderr
    one_short = write_grid(d / "short.json", [{"x": ["a.parquet"]}, {"x": ["b_X.npy"]}])
    proc = run_here("sweep.py", "--grid", one_short, "--out", d / "sw", "--dry-run", "--", "--epochs", 1)
    assert_user_error(proc, one_short, "trial x=b_X.npy", "--y y.npy")
    assert not (d / "sw").exists()


@pytest.mark.slow
def test_a_command_fixed_after_every_trial_failed_may_reuse_the_out_dir(dataset):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [3e-3]})
    base = ["--grid", grid, "--out", d / "sw", *train_flags(dataset, "--epochs", 1, vary=("lr",))]
    broken = run("sweep.py", *base, "--elec", 7)      # the data have 3 channels: train.py refuses it
    assert broken.returncode == 1, broken.stdout + broken.stderr
    (trial,) = read_csv(d / "sw" / "trials.csv")
    assert trial["status"] == "failed" and trial["exit_code"] == "2" and "--elec" in trial["error"]
    # nothing trained with --elec 7: the fixed command runs in the same --out, afresh
    fixed = run("sweep.py", *base)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "no trial had trained with them" in fixed.stdout and "1 trials, 0 done, 1 to run" in fixed.stdout
    (trial,) = read_csv(d / "sw" / "trials.csv")
    assert trial["status"] == "completed"
    assert "--elec" in (d / "sw" / "previous" / f"{trial['id']}.1" / "log.txt").read_text()
    # once a trial trained, other flags would mix two experiments in one directory
    assert_user_error(run("sweep.py", *base, "--patience", 3), "was swept with train.py flags", "another --out")


@pytest.mark.slow
def test_a_trial_past_the_timeout_is_stopped_and_recorded(dataset):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"epochs": [50]})
    start = time.time()
    proc = run("sweep.py", "--grid", grid, "--out", d / "sw", "--timeout", 1, "--grace", 2,
               *train_flags(dataset))
    assert proc.returncode == 1 and time.time() - start < 20
    (trial,) = read_csv(d / "sw" / "trials.csv")
    # train.py ends on SIGTERM with its one line and 143 (or dies of it, -15, if still starting)
    assert trial["status"] == "timeout" and trial["exit_code"] in ("143", str(-signal.SIGTERM))
    assert 1 <= float(trial["wall_s"]) < 5
    assert processes_mentioning(str(d / "sw")) == []


def test_dry_run_prints_every_command_and_writes_nothing(dataset):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", [{"lr": [1e-3, 3e-3], "normalize": [True, False]},
                                        {"lr": [1e-3], "normalize": [True]},           # a duplicate point
                                        {"drop": [0.0], "split": ["random"]}])
    proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", "--dry-run", "--seeds", 0, 1,
                    "--launcher", "srun -N1 -n1 --gres=gpu:1 python", *train_flags(dataset, "--epochs", 3, vary=("lr",)))
    assert proc.returncode == 0, proc.stderr
    commands = [shlex.split(line) for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert len(commands) == (4 + 1) * 2
    for argv in commands:
        assert argv[:5] == ["srun", "-N1", "-n1", "--gres=gpu:1", "python"]
        assert argv[5] == os.path.join(ROOT, "train.py")
        assert "--run-dir" in argv and "--save" in argv and "--seed" in argv
    assert sum("--normalize" in argv for argv in commands) == 4
    assert not (d / "sw").exists()

    # --sample: the same points for the same --sample-seed
    big = write_grid(d / "big.json", {"lr": [1e-3, 2e-3, 3e-3, 4e-3], "drop": [0.0, 0.1, 0.2, 0.3]})

    def sampled(seed):
        p = run_here("sweep.py", "--grid", big, "--out", d / "sw", "--dry-run", "--sample", 3, "--sample-seed", seed,
                     *train_flags(dataset, vary=("lr",)))
        return [line for line in p.stdout.splitlines() if line.startswith("#")]

    first = sampled(1)
    assert len(first) == 3 and first == sampled(1) and not (d / "sw").exists()


BAD_GRIDS = [
    ("{lr: [0.1]}", "not valid JSON"),
    ("[]", "an empty list"),
    ('{"lr": []}', "'lr' has an empty list of values"),
    ('{"lr": 0.1}', "'lr' must be a list of values"),
    ('{"lr": [[0.1]]}', "is not a number"),
    ('[{"lr": [0.1]}, 3]', "grid 1: expected an object"),
    ('{"learning-rate": [0.1]}', "'learning-rate' is not a train.py flag"),
    ('{"frame_embed": [8]}', "did you mean 'frame-embed'"),
    ('{"--lr": [0.1]}', "without dashes"),
    ('{"save": ["a.pt"]}', "the sweep sets it"),
    ('{"seed": [1, 2]}', "--seeds"),
    ('{"normalize": [1]}', "bare flag"),
    ('{"drop": [true]}', "takes a value"),
    ('{"drop": ["high"]}', "trial drop=high: argument --drop"),
    ('{"split": ["sideways"]}', "invalid choice: 'sideways'"),
    ('{"model-kwargs": ["depth_mult=2", "nosuch=1"]}', "trial model-kwargs=nosuch=1: --model-kwargs nosuch: not an option"),
    ('{"monitor": ["val_loss", "val_f1"]}', "--metric"),
]


@pytest.mark.parametrize("text,needle", BAD_GRIDS, ids=[n for _, n in BAD_GRIDS])
def test_a_bad_grid_is_one_line_naming_the_file_and_nothing_is_written(dataset, text, needle):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", text)
    proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", *train_flags(dataset))
    assert_user_error(proc, grid, needle)
    assert not (d / "sw").exists()


BAD_FLAGS = [
    (["--bogus", "1"], "train.py has no option --bogus"),
    (["--save", "a.pt"], "--save is set for each trial"),
    (["--run-dir=r"], "--run-dir is set for each trial"),
    (["--seed", "3", "SEEDS"], "--seed conflicts with --seeds"),
    (["--lr", "0.1"], "'lr' is in the grid and also after --"),
    (["--epochs", "many"], "train.py flags after --: argument --epochs"),
    (["NO_XY"], "--x X.npy and --y y.npy are needed"),
    (["NO_DASHDASH"], "give train.py's flags after --"),
    (["--jobs", "0", "OWN"], "argument --jobs: 0 is out of range: must be >= 1"),
    (["--gpus", "0,1,2", "--jobs", "2", "OWN"], "cannot be shared evenly"),
    (["--launcher", "no-such-launcher --flag", "OWN"], "no-such-launcher is not a program on PATH"),
]


@pytest.mark.parametrize("flags,needle", BAD_FLAGS, ids=[n for _, n in BAD_FLAGS])
def test_bad_train_flags_are_refused_before_anything_starts(dataset, flags, needle):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [0.1]})
    own = ["--grid", grid, "--out", str(d / "sw")]
    if "SEEDS" in flags:
        own += ["--seeds", "0", "1"]
    if "OWN" in flags:
        own, flags = own + [f for f in flags if f != "OWN"], []
    if "NO_XY" in flags:
        tail = ["--", "--epochs", "1"]
    elif "NO_DASHDASH" in flags:
        tail = []
    else:
        tail = train_flags(dataset, *[f for f in flags if f != "SEEDS"], vary=("lr",))
    assert_user_error(run_here("sweep.py", *own, *tail), needle)
    assert not (d / "sw").exists()


def test_a_locked_or_foreign_out_directory_is_refused(dataset):
    d = dataset["dir"]
    grid = write_grid(d / "grid.json", {"lr": [0.1]})
    (d / "sw").mkdir()
    with open(d / "sw" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242\n")
        lock.flush()
        proc = run_here("sweep.py", "--grid", grid, "--out", d / "sw", *train_flags(dataset, vary=("lr",)))
    assert_user_error(proc, str(d / "sw"), "another sweep (pid 4242) is running")
    (d / "other").mkdir()
    (d / "other" / "notes.txt").write_text("mine")
    proc = run_here("sweep.py", "--grid", grid, "--out", d / "other", *train_flags(dataset, vary=("lr",)))
    assert_user_error(proc, "not a sweep directory")
    assert os.listdir(d / "other") == ["notes.txt"]


def test_a_trial_the_sweep_stopped_says_the_sweep_command_resumes_it(tmp_path):
    from biosig.sweep.processes import finish_trial, stopped_error
    from biosig.sweep.trials import Trial, continuing_text, load_state
    trial = Trial(id="t", point_id="t", params={}, seed=0, base_argv=[], argv=[], dir=str(tmp_path / "t"))
    os.makedirs(trial.run_dir)
    assert stopped_error(trial, signal.SIGINT, "run the same sweep command") == (
        "the sweep was stopped by SIGINT before it saved an epoch: run the same sweep command to start it again")
    (tmp_path / "t" / "run" / "last.pt").write_bytes(b"")
    (tmp_path / "t" / "run" / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    why = stopped_error(trial, signal.SIGTERM, "requeue the array task")
    assert why == ("the sweep was stopped by SIGTERM after epoch 2 was saved: requeue the array task to continue it "
                   "from there")
    finish_trial(trial, 143, 3.0, "interrupted", why)
    load_state(trial)
    assert trial.status == "incomplete" and trial.error == why and continuing_text([trial, trial]) == (
        " (2 continue from their last.pt)")
    (tmp_path / "t" / "run" / "summary.json").write_text('{"status": "completed", "best": 0.5}')
    finish_trial(trial, 0, 2.0, "interrupted", why)     # it finished just as the sweep was stopped
    assert trial.status == "completed" and trial.error == ""
    assert trial.attempts_s == [3.0, 2.0] and trial.wall_s == 5.0      # a second attempt adds to the first


def test_each_parallel_trial_gets_its_gpus_and_a_share_of_the_cores(monkeypatch):
    from biosig.sweep.grid import trial_id
    from biosig.sweep.processes import trial_envs
    envs = trial_envs(2, ["0", "1", "2", "3"])
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1", "2,3"]
    from biosig.threads import usable_cpus
    cores = usable_cpus()[0]        # affinity, cgroup quota, SLURM_CPUS_PER_TASK (tests/test_threads.py)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert {e["OMP_NUM_THREADS"] for e in trial_envs(3, [])} == {str(max(1, cores // 3))}
    assert {e["MKL_NUM_THREADS"] for e in trial_envs(1, [])} == {str(cores)}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")     # a limit the sweep was given is kept
    assert trial_envs(1, [])[0]["OMP_NUM_THREADS"] == "1"
    assert trial_envs(1, [])[0].get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
    # ids: readable, stable, safe as a directory name; a hash when characters were replaced
    assert trial_id({"lr": 0.001, "batch": 64}, 0) == "batch=64_lr=0.001_seed=0"
    odd = trial_id({"class-names": "/data/names.json"})
    assert "/" not in odd and odd == trial_id({"class-names": "/data/names.json"})
    assert odd != trial_id({"class-names": "-data-names.json"})
    assert len(trial_id({"x": "a" * 300})) < 100
    # a file by its name; the hash keeps two X.npy in different folders apart
    a, b = trial_id({"x": "/data/s01/X.npy"}), trial_id({"x": "/data/s02/X.npy"})
    assert a.startswith("x=X.npy-") and b.startswith("x=X.npy-") and a != b
    assert trial_id({"y": "label"}) == "y=label"                  # a parquet label column is no path
