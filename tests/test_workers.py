"""sweep.py --search optuna --storage: workers (separate processes, as on separate machines) sharing
one study in PostgreSQL (a throw-away server, tests/pg.py) or a journal file: the study ends with
exactly --trials points, a killed worker's point is run again from its last.pt, a worker of another
study is refused, an unreachable or vanished database is one line, and no password is written."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ENV, ROOT, assert_user_error, make_windows, run, run_here

pytestmark = pytest.mark.slow       # several sweep.py processes each
optuna = pytest.importorskip("optuna")
N = 12


@pytest.fixture
def data(tmp_path):
    x, y = make_windows(n=96, t=32)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "space.json").write_text(json.dumps({"lr": {"log": [1e-3, 1e-2]}}))
    return tmp_path


def command(d, storage, *own, epochs=3, trials=N):
    return [sys.executable, os.path.join(ROOT, "sweep.py"), "--grid", str(d / "space.json"), "--out", str(d / "sw"),
            "--search", "optuna", "--trials", str(trials), "--storage", storage, "--no-report", *own,
            "--", "--x", str(d / "X.npy"), "--y", str(d / "y.npy"), "--model", "tcn", "--epochs", str(epochs)]


def start(argv, d, name, env=None):
    log = open(d / f"{name}.log", "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=d, env=env or ENV,
                            start_new_session=True)


def finish(procs, d, timeout=300):
    codes = [p.wait(timeout=timeout) for p in procs]
    logs = "\n".join(path.read_text()[-1500:] for path in sorted(d.glob("w*.log")))
    return codes, logs


def load(storage):
    if storage.startswith("journal:"):
        backend = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage[8:]))
    else:
        backend = storage
    return optuna.load_study(study_name="sw", storage=backend)


def states(study):
    names = [t.state.name for t in study.trials if not t.user_attrs.get("surplus")]
    return {s: names.count(s) for s in set(names)}


def check_study_and_tables(d, study):
    """Exactly N finished points, each point's trial run once, best.json the study's best."""
    assert states(study).get("COMPLETE") == N and "RUNNING" not in states(study), states(study)
    import csv
    with open(d / "sw" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    points = [t.user_attrs["point"] for t in study.trials if t.state.name == "COMPLETE"]
    assert len(rows) == len(set(points)) and all(r["status"] == "completed" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    best = json.loads((d / "sw" / "best.json").read_text())
    assert best["mean"] == pytest.approx(study.best_value, rel=1e-12)
    tied = [t.user_attrs["point"] for t in study.trials if t.state.name == "COMPLETE" and t.value == study.best_value]
    assert json.dumps(best["params"]) in tied, (best["params"], tied)


def no_password_under(d, password):
    for folder, _, files in os.walk(d):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert password.encode() not in f.read(), os.path.join(folder, name)


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, data):
    """(the --storage URL, its password or None, the environment workers run in)."""
    if request.param == "journal":
        return f"journal:{data / 'study.log'}", None, ENV
    server = request.getfixturevalue("postgres")
    url = server.fresh_url()
    return url, server.password, dict(ENV, PGPASSWORD=server.password)


def test_an_array_of_three_workers_finishes_the_study_once(data, storage):
    """--emit-sbatch --workers 3: the script's tasks, run by hand side by side with 2 jobs each,
    end the study with exactly 12 points; the script and OUT hold no password (the tasks take it
    from PGPASSWORD)."""
    d, (url, password, env) = data, storage
    emitted = run(*command(d, url, "--jobs", "2", "--emit-sbatch", str(d / "sw.sbatch"), "--workers", "3")[1:])
    assert emitted.returncode == 0, emitted.stderr
    script = (d / "sw.sbatch").read_text()
    assert "#SBATCH --array=0-2\n" in script and "--jobs 2" in script
    tasks = [start(["bash", str(d / "sw.sbatch")], d, f"w{i}", dict(env, SLURM_ARRAY_JOB_ID="7",
                                                                     SLURM_ARRAY_TASK_ID=str(i))) for i in range(3)]
    codes, logs = finish(tasks, d)
    assert codes == [0, 0, 0], logs
    study = load(url)
    assert {t.user_attrs["worker"].split(":")[1] for t in study.trials} <= {"7_0", "7_1", "7_2"}
    check_study_and_tables(d, study)
    collected = run_here("sweep.py", *command(d, url, "--collect")[2:])
    assert collected.returncode == 0 and "have not finished" not in collected.stdout, collected.stderr
    check_study_and_tables(d, study)
    if password:
        assert password not in emitted.stdout + emitted.stderr + logs + collected.stdout
        no_password_under(d, password)


def test_a_killed_worker_leaves_its_point_to_the_others(data, storage):
    """SIGKILL one of three workers mid-point: the point is failed (its heartbeat stops), queued
    again, continued from its last.pt by another worker; the study still ends with 12."""
    d, (url, password, env) = data, storage
    argv = command(d, url, "--jobs", "2", "--heartbeat", "2", epochs=12)
    workers = [start(argv, d, f"w{i}", env) for i in range(3)]
    victim = f"{socket.gethostname()}:{workers[0].pid}"
    deadline, doomed = time.time() + 120, None
    while doomed is None:
        assert time.time() < deadline and workers[0].poll() is None, "worker 0 never had a point with a last.pt"
        try:
            trials = load(url).trials
        except KeyError:            # no study yet
            trials = []
        for t in trials:
            point = t.user_attrs.get("point")
            if t.state.name == "RUNNING" and t.user_attrs.get("worker") == victim and point:
                member = [p for p in (d / "sw" / "trials").iterdir() if (p / "run" / "last.pt").exists()
                          and json.loads((p / "trial.json").read_text())["params"] == json.loads(point)]
                doomed = (t.number, member[0]) if member else None
        time.sleep(0.2)
    os.killpg(workers[0].pid, signal.SIGKILL)
    workers[0].wait()
    codes, logs = finish(workers[1:], d)
    assert codes == [0, 0], logs
    study = load(url)
    number, member = doomed
    assert study.trials[number].state.name == "FAIL"
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == number]
    assert [t.state.name for t in retried] == ["COMPLETE"], [t.state.name for t in retried]
    attempts = [line for line in (member / "log.txt").read_text().splitlines() if line.startswith("$ ")]
    assert len(attempts) == 2 and "--resume" in attempts[1], attempts     # continued, not started afresh
    check_study_and_tables(d, study)
    if password:        # given in the URL on the command line: in no log, sweep.json or table
        assert password not in logs
        no_password_under(d, password)


def test_a_worker_of_another_space_or_objective_is_refused(data, tmp_path):
    d = data
    url = f"journal:{d / 'study.log'}"
    emitted = run_here("sweep.py", *command(d, url, "--emit-sbatch", str(d / "sw.sbatch"), "--workers", "2")[2:])
    assert emitted.returncode == 0, emitted.stderr
    (d / "space.json").write_text(json.dumps({"lr": {"log": [1e-4, 1e-2]}}))
    other = run_here("sweep.py", *command(d, url)[2:])
    assert_user_error(other, f"--storage {url} study sw: this study's search space is", "every worker runs the study's command")
    (d / "space.json").write_text(json.dumps({"lr": {"log": [1e-3, 1e-2]}}))
    metric = run_here("sweep.py", *command(d, url, "--metric", "val_acc")[2:])
    assert_user_error(metric, "this study optimizes val_loss (min); the command asks for val_acc (max)")
    assert not (d / "sw" / "trials").exists()


def test_an_unreachable_database_is_one_line_within_seconds(data):
    """A closed port (refused at once) and a port that accepts but never answers (the connect
    timeout): one line, exit 2, nothing written; run as a real process with a 20 s limit, so a
    hang fails the test."""
    pytest.importorskip("psycopg")
    d = data
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)            # the handshake completes in the backlog; no server ever speaks
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        for port in (closed.getsockname()[1], silent.getsockname()[1]):
            t0 = time.monotonic()
            proc = run(*command(d, f"postgresql://biosig:s3cret-pw@127.0.0.1:{port}/db")[1:], timeout=20)
            took = time.monotonic() - t0
            assert_user_error(proc, f"--storage postgresql://biosig:***@127.0.0.1:{port}/db: cannot open the study")
            assert "s3cret-pw" not in proc.stderr + proc.stdout and not (d / "sw").exists(), took
        closed.close()


def test_a_database_gone_mid_sweep_stops_the_worker_and_the_same_command_resumes(data, postgres):
    d = data
    url = postgres.fresh_url()
    env = dict(ENV, PGPASSWORD=postgres.password)
    argv = command(d, url, "--jobs", "2", "--heartbeat", "1", epochs=80, trials=2)
    worker = start(argv, d, "w0", env)
    try:
        deadline = time.time() + 120
        while not list((d / "sw" / "trials").glob("*/run/last.pt")):
            assert time.time() < deadline and worker.poll() is None, (d / "w0.log").read_text()
            time.sleep(0.2)
        postgres.stop()
        code = worker.wait(timeout=60)
    finally:
        postgres.start()
    out = (d / "w0.log").read_text()
    assert code == 2, out
    assert "the study's storage stopped answering" in out and "run the same command to resume" in out
    assert "Traceback" not in out and postgres.password not in out
    again = subprocess.run(argv, capture_output=True, text=True, cwd=d, env=env, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert states(load(url)).get("COMPLETE") == 2, states(load(url))
    resumed = [p for p in (d / "sw" / "trials").iterdir() if "--resume" in (p / "log.txt").read_text()]
    assert resumed, "no point continued from its last.pt"


def test_workers_started_at_once_on_a_new_database_all_open_it(postgres):
    """Optuna's tables are made by the first worker to connect; the others, racing it (a duplicate
    key, a table that exists), try again instead of failing (7 of 20 did, before)."""
    code = ("import sys, optuna; from biosig.sweep.storage import parse, open_storage; "
            "open_storage(parse(sys.argv[1], 'out'), optuna)")
    for _ in range(3):
        url = postgres.fresh_url()
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=ENV) for _ in range(4)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors


def test_a_point_proposed_twice_runs_once(data):
    """Two values and 5 points over two workers x 2 jobs: TPE proposes each value again and again,
    often while it runs elsewhere or beside itself; each trial runs once (OUT/locks), and every
    point reads its result."""
    d = data
    (d / "space.json").write_text(json.dumps({"lr": [0.003, 0.005]}))
    url = f"journal:{d / 'study.log'}"
    workers = [start(command(d, url, "--jobs", "2", trials=5, epochs=6), d, f"w{i}") for i in range(2)]
    codes, logs = finish(workers, d)
    assert codes == [0, 0], logs
    study = load(url)
    assert states(study).get("COMPLETE") == 5, states(study)
    runs = sorted(p.name for p in (d / "sw" / "trials").iterdir())
    assert runs == ["lr=0.003", "lr=0.005"]
    for name in runs:           # one attempt each: never started twice, nor beside itself
        lines = (d / "sw" / "trials" / name / "log.txt").read_text().splitlines()
        assert sum(line.startswith("$ ") for line in lines) == 1, name
    values = {t.user_attrs["point"]: t.value for t in study.trials}
    assert all(t.value == values[t.user_attrs["point"]] for t in study.trials)
