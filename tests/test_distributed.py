"""torchrun + DistributedDataParallel on CPU (gloo, 2 processes) against one process."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import ENV, FAST, ROOT, run_here, torchrun

pytestmark = pytest.mark.slow        # torchrun: 2 more interpreters a run; not in the fast tier

# dropout 0 and SyncBatchNorm: two processes splitting each global batch must compute what
# one process does, up to float summation order
SAME = ["--drop", "0", "--sync-bn", "--deterministic", *FAST, "--batch", "32"]


def weights(path):
    return torch.load(path, weights_only=True)["model_state"]


def same_data(d):
    """Writes d/X.npy, d/y.npy (250 windows: 199 train, so the last global batch of 32, 7 windows,
    splits 4 + 3 over two processes) -> train.py's data and SAME arguments for them."""
    import numpy as np

    from conftest import make_windows
    X, y = make_windows(n=250)
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    return ["--x", d / "X.npy", "--y", d / "y.npy", *SAME]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 1-process and one 2-process run (1 epoch each) over the same data and global batches."""
    d = tmp_path_factory.mktemp("ddp")
    data = [*same_data(d), "--epochs", "1"]
    one = run_here("train.py", *data, "--save", d / "one.pt", "--run-dir", d / "one")
    two = torchrun(2, *data, "--save", d / "two.pt", "--run-dir", d / "two")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    return {"dir": d, "data": data, "one": one, "two": two}


def test_two_processes_match_one(runs):
    d = runs["dir"]
    a, b = weights(d / "one" / "last.pt"), weights(d / "two" / "last.pt")
    assert set(a) == set(b)                                       # plain keys, no "module." prefix
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k
    # validation over the whole set, once: the same metrics and sample count
    ma = json.loads((d / "one" / "metrics.jsonl").read_text())
    mb = json.loads((d / "two" / "metrics.jsonl").read_text())
    assert ma["train_windows"] == mb["train_windows"] == 199
    for key in ("val_acc", "val_f1", "val_balanced_acc"):
        assert ma[key] == mb[key], key
    assert mb["val_loss"] == pytest.approx(ma["val_loss"], rel=1e-5)
    sb = json.loads((d / "two" / "summary.json").read_text())
    assert sb["world_size"] == 2 and sb["global_batch"] == 32
    assert sum(sb["best_metrics"]["per_class"]["support"]) == sb["split"]["val"]["windows"] == 51
    # only rank 0 prints
    out = runs["two"].stdout
    assert out.count("[epoch 001]") == 1 and "global batch 32 = 2 processes x ~16" in out


def test_ddp_checkpoint_runs_in_single_process_infer(runs):
    d = runs["dir"]
    proc = run_here("infer.py", "--ckpt", d / "two.pt", "--x", d / "X.npy", "--y", d / "y.npy", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy=" in proc.stdout


def test_resume_under_torchrun(runs):
    """Extend the 2-process run by one epoch with --resume; equals a straight 2-epoch run."""
    d = runs["dir"]
    straight = torchrun(2, *runs["data"], "--epochs", "2", "--save", d / "s.pt", "--run-dir", d / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    resumed = torchrun(2, "--resume", d / "two" / "last.pt", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stdout
    a, b = weights(d / "straight" / "last.pt"), weights(d / "two" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_compile_and_amp_under_ddp(tmp_path, dataset):
    """Ranks take the stop decision from shared metrics: nobody waits in a collective alone."""
    proc = torchrun(2, "--x", dataset["x"], "--y", dataset["y"], "--save", tmp_path / "m.pt", "--run-dir",
                    tmp_path / "r", "--epochs", "6", "--patience", "1", "--min-delta", "100", *FAST,
                    "--compile", "--compile-backend", "aot_eager", "--amp", "bf16", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "early_stopped" and summary["epochs_run"] == 2
    assert run_here("infer.py", "--ckpt", tmp_path / "m.pt", "--x", dataset["x"], "--quiet").returncode == 0


def test_a_failing_rank_ends_the_job(tmp_path, dataset):
    env = dict(ENV, BIOSIG_DIST_TIMEOUT="60")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(ROOT, "tests", "rank_fails.py"), "--x", dataset["x"], "--y", dataset["y"],
           "--save", str(tmp_path / "m.pt"), "--run-dir", str(tmp_path / "r"), "--epochs", "3", *FAST]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert time.monotonic() - start < 90
    assert "simulated unreadable shard" in proc.stderr
    assert not (tmp_path / "r" / "summary.json").exists()


def test_user_error_on_all_ranks_is_one_clean_exit(tmp_path, dataset):
    proc = torchrun(2, "--x", dataset["x"], "--y", dataset["y"], "--save", tmp_path / "nodir" / "m.pt",
                    "--epochs", "1", *FAST)
    assert proc.returncode != 0
    assert "does not exist (--save" in proc.stderr
    assert not (tmp_path / "nodir").exists()


def test_jobs_that_finish_exit_zero_under_load():
    """A finished job exits 0 even on a busy machine (issue 10). If anything kept the group
    alive past cleanup(), gloo's worker threads ran on into interpreter exit, and one dropping
    the last reference to a collective's tensor there died taking the GIL: `terminate called
    without an active exception`, SIGABRT, after training had finished. The thread count catches
    that on every run; the repeats, two jobs at a time, catch the abort itself."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(ROOT, "tests", "ddp_finish.py")]
    for _ in range(6):
        jobs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                 cwd=ROOT) for _ in range(2)]
        try:
            finished = [job.communicate(timeout=120) for job in jobs]
        finally:
            for job in jobs:
                job.kill()
        for job, (out, err) in zip(jobs, finished):
            assert job.returncode == 0 and "terminate called" not in err, err[-3000:]
            assert out.count(": 0 gloo threads after cleanup") == 2, out
