"""Shared fixtures: small synthetic windows with real signal, and running the scripts as a user does."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One thread per process: tests run several processes on a 2-core machine.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
ENV.pop("CUDA_VISIBLE_DEVICES", None)


def make_windows(n=240, c=3, f=1, t=32, k=3, seed=0, noise=0.8):
    """(X (n, c, f, t) float32, y (n,) int64): class k adds a sinusoid of frequency k+1 to
    channel k % c, so the classes are separable but not trivially (noise)."""
    from biosig.tasks import Classification
    return Classification.example_data(n, c, f, t, seed=seed, k=k, noise=noise)


@pytest.fixture
def dataset(tmp_path):
    """X.npy / y.npy with signal in tmp_path; returns a dict of paths and arrays."""
    X, y = make_windows()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return {"x": str(tmp_path / "X.npy"), "y": str(tmp_path / "y.npy"), "X": X, "Y": y, "dir": tmp_path}


# Small, fast model settings for tests (the defaults are sized for real data).
FAST = ["--frame-embed", "16", "--layers", "1", "--heads", "2", "--batch", "32", "--lr", "3e-3"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One small classifier trained once for the session, for the tests that only read a checkpoint:
    60 windows of make_windows, FAST, 1 epoch, in-process -> {"dir", "x", "y", "ckpt", "run"}.
    Read only: a test that changes a checkpoint copies it first."""
    d = tmp_path_factory.mktemp("trained")
    X, y = make_windows(n=60)
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", "--save", d / "m.pt", "--run-dir", d / "run",
                    "--epochs", "1", *FAST)
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "x": d / "X.npy", "y": d / "y.npy", "ckpt": d / "m.pt", "run": d / "run"}


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server for the session (tests/pg.py; each xdist worker its own, on its
    own port), started: postgres.fresh_url() -> 'postgresql://biosig:PASSWORD@127.0.0.1:PORT/t_<hex>',
    a new empty database per call (one per test); postgres.url(name), postgres.password / .port /
    .host, postgres.stop() / .start(). A test that stops it starts it again before it ends
    (try/finally); one that wants it gone for good makes its own: `with pg.Server() as server:`.
    Skips, saying why, where PostgreSQL cannot be started (no binaries, no `postgres` user as root)."""
    pytest.importorskip("psycopg")                     # url() creates the databases through it
    from pg import Server, Unavailable
    try:
        server = Server()
    except Unavailable as why:
        pytest.skip(f"PostgreSQL cannot be started here: {why}")
    try:
        yield server
    finally:
        server.close()


def slow_after(values, keep=1):
    """Parametrize values with all but the first `keep` marked slow: the fast tier (-m "not slow")
    runs the code path once, the full suite every value."""
    return slow_except(values, *values[:keep])


def slow_except(values, *kept):
    """Parametrize values with all but `kept` marked slow (kept: a quick one that runs the same code)."""
    return [v if v in kept else pytest.param(*(v if isinstance(v, tuple) else (v,)), marks=pytest.mark.slow)
            for v in values]


def quiet(script, args, report=False):
    """The scripts' arguments without the run report (--no-report: matplotlib's ~1 s a run, paid by
    hundreds of test runs); tests/test_report.py asks for it (report=True)."""
    args = [str(a) for a in args]
    if report or "--no-report" in args:
        return args
    return {"train.py": args + ["--no-report"], "sweep.py": ["--no-report"] + args}.get(script, args)


def run(script, *args, cwd=None, timeout=300, env=None, report=False):
    """Run a top-level script with this interpreter, as a user would; returns CompletedProcess."""
    cmd = [sys.executable, os.path.join(ROOT, script), *quiet(script, args, report)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                          env=env or ENV)


# What run_here runs for a script or a `python -m` tool: its command's main(argv) in biosig/cli/
MAINS = {"train.py": "biosig.cli.train", "infer.py": "biosig.cli.infer", "sweep.py": "biosig.cli.sweep",
         **{f"biosig.{tool}": f"biosig.cli.{tool}"
            for tool in ("bandpower", "convert", "examples", "export", "report", "windows")}}


def run_here(script, *args, cwd=None, report=False):
    """run() in this interpreter, without the ~2 s of a fresh interpreter importing torch: the script's
    (or the `python -m` tool's, script="biosig.export") main(argv) through errors.run_cli, in ENV's
    environment (one thread), its stdout and stderr captured; sys.argv, the working directory, the
    environment, the signal handlers, torch's threads and deterministic mode put back after
    -> CompletedProcess. For what a run writes and says; what
    only a real process shows (its exit status, signals, torchrun, a kill) stays with run(). A bug's
    traceback goes to stderr with exit status 1, as in a process."""
    import contextlib
    import importlib
    import io
    import signal
    import traceback
    from biosig.errors import run_cli
    main = importlib.import_module(MAINS[script]).main
    argv = quiet(script, args, report)
    out, err = io.StringIO(), io.StringIO()
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    import torch
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    # sys.argv[0] as the process has it: the script, or the module's file for python -m (usage lines name it)
    sys.argv = [os.path.join(ROOT, script if script.endswith(".py") else script.replace(".", "/") + ".py"), *argv]
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                returned = run_cli(main, argv)
                # sweep.py and the tools exit with what main returns (sys.exit(run_cli(main))); train.py
                # and infer.py exit 0
                code = 0 if script in ("train.py", "infer.py") or returned is None else returned
                if not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
                if stop.code is not None and not isinstance(stop.code, int):
                    print(stop.code, file=sys.stderr)                  # sys.exit("message"), as Python does
            except Exception:                                   # a bug: a traceback, as the script shows it
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.use_deterministic_algorithms(deterministic)           # --deterministic is the run's, not the session's
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess([script, *argv], code, out.getvalue(), err.getvalue())


def torchrun(nproc, *args, cwd=None, timeout=300, env=None):
    """Launch train.py under torchrun (gloo on CPU) with nproc processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           os.path.join(ROOT, "train.py"), *quiet("train.py", args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                          env=env or ENV)


def assert_user_error(proc, *needles):
    """Exit 2, exactly one line on stderr starting 'error:', naming what it should, no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_main(main, argv, capsys):
    """A command's main(argv) in-process, as its script runs it (errors.run_cli) -> (exit status,
    stdout, stderr)."""
    import signal
    from biosig.errors import run_cli
    sigterm = signal.getsignal(signal.SIGTERM)         # train/windows main() take SIGTERM over
    capsys.readouterr()
    try:
        code = run_cli(main, [str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    out, err = capsys.readouterr()
    return code or 0, out, err


def main_fails(main, argv, capsys, *needles):
    """assert_user_error in-process: main(argv) must exit 2 with exactly one line on stderr
    starting 'error:' and naming what it should; returns the line."""
    code, _, err = run_main(main, argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pytest-xdist): one worker per CPU this process may use (biosig.threads counts
    the affinity mask and a container's quota), at most 4: every test's processes run one thread,
    so two cores take two workers, and past four, workers mostly add torch imports."""
    from biosig.threads import usable_cpus
    return max(1, min(4, usable_cpus()[0]))
