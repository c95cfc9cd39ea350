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
