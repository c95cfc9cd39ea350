"""The thread count: chosen from the CPUs this process may use (affinity, cgroup quota, SLURM),
OMP_NUM_THREADS when set, --threads over all, and said in the start-up line (biosig/threads.py)."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ENV, FAST, ROOT, assert_user_error, main_fails, run_main
from biosig.threads import check_environment, choose_threads, cgroup_quota

NO_CGROUP = {"cgroup_root": "/nonexistent", "proc_cgroup": "/nonexistent"}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_affinity_mask_limits_threads():
    """A process pinned to one CPU (taskset -c 0) chooses 1 thread; an OMP_NUM_THREADS the user
    set still wins."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from biosig.threads import choose_threads; print(*choose_threads(environ={}), sep='|'); "
            "print(*choose_threads(environ={'OMP_NUM_THREADS': '3'}), sep='|')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout.splitlines()
    assert out[0].split("|")[0] == "1"
    assert out[0].split("|")[1] in ("CPU affinity", "CPU count", "cgroup CPU quota")   # CPU count: a 1-CPU box
    assert out[1] == "3|OMP_NUM_THREADS"


def test_slurm_quota_torchrun_and_flag(tmp_path):
    """SLURM_CPUS_PER_TASK and a cgroup v2 quota cap the guess; torchrun's local ranks share it;
    OMP_NUM_THREADS beats the guess and --threads beats everything."""
    assert choose_threads(environ={"SLURM_CPUS_PER_TASK": "1"}, **NO_CGROUP) == (1, "SLURM_CPUS_PER_TASK")
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")     # 1.5 CPUs: rounded down
    (tmp_path / "self").write_text("0::/job\n")
    assert cgroup_quota(str(tmp_path), str(tmp_path / "self")) == 1
    assert choose_threads(environ={}, cgroup_root=str(tmp_path), proc_cgroup=str(tmp_path / "self")) == (
        1, "cgroup CPU quota")
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(str(tmp_path), str(tmp_path / "self")) is None
    (tmp_path / "cpu" / "job").mkdir(parents=True)                     # cgroup v1, as docker --cpus 1 on v1
    (tmp_path / "cpu" / "job" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "job" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self").write_text("4:cpu,cpuacct:/job\n")
    assert cgroup_quota(str(tmp_path), str(tmp_path / "self")) == 1
    n, why = choose_threads(environ={"SLURM_CPUS_PER_TASK": "4", "LOCAL_WORLD_SIZE": "2"}, **NO_CGROUP)
    assert n == max(1, min(4, len(os.sched_getaffinity(0))) // 2) and "2 local processes" in why
    assert choose_threads(environ={"OMP_NUM_THREADS": "5", "SLURM_CPUS_PER_TASK": "1"}) == (5, "OMP_NUM_THREADS")
    assert choose_threads(7, environ={"OMP_NUM_THREADS": "5"}) == (7, "--threads")


def test_train_says_and_uses_threads(dataset, capsys):
    """train.py --threads 1 sets torch's threads and says so in its start-up line; --threads 0
    and a nonsense OMP_NUM_THREADS are one-line user errors."""
    from biosig.cli.train import main
    before = torch.get_num_threads()
    base = ["--x", dataset["x"], "--y", dataset["y"], "--epochs", "1", "--no-report", *FAST]
    try:
        code, out, _ = run_main(main, base + ["--threads", "1", "--save", dataset["dir"] / "m.pt",
                                              "--run-dir", dataset["dir"] / "run"], capsys)
        assert code == 0
        assert torch.get_num_threads() == 1
        assert "threads 1 (--threads)" in next(line for line in out.splitlines() if line.startswith("model:"))
        torch.set_num_threads(before)
        from biosig.cli.infer import main as infer
        code, _, err = run_main(infer, ["--ckpt", dataset["dir"] / "m.pt", "--x", dataset["x"], "--threads", "1"],
                                capsys)
        assert code == 0 and "threads 1 (--threads)" in err and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    main_fails(main, base + ["--threads", "0", "--save", dataset["dir"] / "n.pt"], capsys, "--threads")
    os.environ["OMP_NUM_THREADS"], old = "lots", os.environ.get("OMP_NUM_THREADS")
    try:
        main_fails(main, base + ["--save", dataset["dir"] / "n.pt"], capsys, "OMP_NUM_THREADS=lots")
    finally:
        os.environ.pop("OMP_NUM_THREADS") if old is None else os.environ.update(OMP_NUM_THREADS=old)
    assert not os.path.exists(dataset["dir"] / "n.pt")


def test_a_nonsense_omp_num_threads_is_our_one_line_before_libgomp_speaks(tmp_path):
    """OMP_NUM_THREADS=abc: libgomp, loaded with torch, printed its own warning and a blank line
    before biosig's error; now the commands check it before torch loads. --threads N still wins."""
    env = dict(ENV, OMP_NUM_THREADS="abc")
    x = tmp_path / "X.npy"
    for script, args in (("train.py", ["--x", x, "--y", tmp_path / "y.npy", "--save", tmp_path / "m.pt"]),
                         ("infer.py", ["--ckpt", tmp_path / "m.pt", "--x", x]),
                         ("-m", ["biosig.bandpower", "--x", x, "--fs", 128, "--out", tmp_path / "b.npy"])):
        proc = subprocess.run([sys.executable, *([script] if script == "-m" else [os.path.join(ROOT, script)]),
                               *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert_user_error(proc, "OMP_NUM_THREADS=abc")
        assert "libgomp" not in proc.stderr
    environ = {"OMP_NUM_THREADS": "abc"}
    check_environment(["--x", "X.npy", "--threads", "3"], environ)       # the flag wins, and libgomp reads it
    assert environ == {"OMP_NUM_THREADS": "3"}
    check_environment(["--threads=2"], environ)                           # a valid value is left alone
    assert environ == {"OMP_NUM_THREADS": "3"}
    with pytest.raises(Exception, match="OMP_NUM_THREADS=x"):
        check_environment(["--threads", "0"], {"OMP_NUM_THREADS": "x"})


def test_module_tools_say_their_thread_count_in_their_summary_line(tmp_path, capsys):
    """Each module tool names the thread count it chose in the line it prints anyway (issue 27):
    the summary line on stdout; on stderr where stdout lists the files written."""
    import numpy as np
    from biosig.cli.bandpower import main as bandpower
    from biosig.cli.convert import main as convert
    from biosig.cli.examples import main as examples
    from biosig.cli.windows import main as windows
    said = "threads 1 (--threads)"
    before = torch.get_num_threads()
    try:
        code, out, err = run_main(examples, ["classification", tmp_path / "ex", "--threads", "1"], capsys)
        assert code == 0 and said in err and said not in out, (out, err)
        x = tmp_path / "ex" / "X_test.npy"
        code, out, _ = run_main(convert, ["--x", x, "--out", tmp_path / "w.parquet", "--threads", "1"], capsys)
        assert code == 0 and out.startswith("wrote ") and out.rstrip().endswith(f"| {said}"), out
        np.save(tmp_path / "raw.npy", np.ones((4, 2, 256), np.float32))
        code, out, _ = run_main(bandpower, ["--x", tmp_path / "raw.npy", "--fs", 128, "--out", tmp_path / "b.npy",
                                            "--threads", "1"], capsys)
        assert code == 0 and out.rstrip().endswith(f"| {said}") and "windows (N, C, F, T')" in out, out
        np.save(tmp_path / "r.npy", np.zeros((2, 400), np.float32))
        code, out, _ = run_main(windows, ["--recording", tmp_path / "r.npy", "--fs", 100, "--length", 1,
                                          "--out", tmp_path / "w", "--threads", "1"], capsys)
        assert code == 0 and "(N, C, F, T) at 100 Hz" in out and out.rstrip().endswith(f"| {said}"), out
    finally:
        torch.set_num_threads(before)


def test_module_tools_and_sweep_trials(tmp_path, monkeypatch, capsys):
    """The module tools take --threads; a sweep's parallel trials share the usable CPUs
    (SLURM_CPUS_PER_TASK here) and wait for each other's threads spinning briefly."""
    from biosig.cli.examples import main as examples
    from biosig.sweep.processes import trial_envs
    before = torch.get_num_threads()
    try:
        assert run_main(examples, ["classification", tmp_path / "ex", "--threads", "1"], capsys)[0] == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    main_fails(examples, ["classification", tmp_path / "ex", "--threads", "-1"], capsys, "--threads")
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    envs = trial_envs(1, [])                                    # one trial at a time: all of the job's 1 CPU
    assert envs[0]["OMP_NUM_THREADS"] == "1" and [e["OMP_NUM_THREADS"] for e in trial_envs(2, [])] == ["1", "1"]
    assert envs[0]["GOMP_SPINCOUNT"] == "10000"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")            # the user's policy stays
    assert "GOMP_SPINCOUNT" not in trial_envs(1, [])[0]
