"""Two torchrun agents on this machine as two nodes (--nnodes 2, c10d rendezvous on a local port):
the run equals one process, only global rank 0 writes, and a run that loses a node resumes exactly."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import ENV, ROOT, quiet, run_here
from test_distributed import same_data, weights

pytestmark = pytest.mark.slow        # two torchrun agents and their workers a run; not in the fast tier

EPOCHS = ["--epochs", "8"]            # ~0.3 s each: the kill below has epochs 2..7 to land in


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(where, *args):
    """Two torchrun agents side by side, each a node of one job (rendezvous on a fresh local port),
    each in its own directory where/node0, where/node1 (its cwd, and its stdout and stderr) and its
    own session (so that a node's agent and workers can be killed together) -> the two Popen."""
    port, rdzv_id = free_port(), f"biosig-test-{where.name}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
           "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", rdzv_id,
           os.path.join(ROOT, "train.py"), *quiet("train.py", args)]
    nodes = []
    for k in range(2):
        cwd = where / f"node{k}"
        cwd.mkdir(parents=True)
        with open(cwd / "stdout", "w") as out, open(cwd / "stderr", "w") as err:
            nodes.append(subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=ENV, start_new_session=True))
    return nodes


def finish(nodes, timeout=180):
    """Wait for the agents -> their exit statuses, "hung" for one still running at the timeout
    (killed then, with its workers)."""
    deadline, codes = time.monotonic() + timeout, []
    for node in nodes:
        try:
            codes.append(node.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append("hung")
            kill_node(node)
    return codes


def kill_node(node):
    """SIGKILL an agent and its workers, as a lost node."""
    for pid in node_processes(node.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait()


def node_processes(agent):
    """An agent's pid and its workers' (torchrun starts each worker in a session of its own, so
    killing the agent's process group leaves them running)."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            pass
    found = [agent]
    for pid in found:
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def said(where, k, stream="stdout"):
    return (where / f"node{k}" / stream).read_text()


def rows(path):
    """metrics.jsonl without its timings."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in open(path)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 1-process run and one two-node run (8 epochs each) over the same data and global batches."""
    d = tmp_path_factory.mktemp("nodes")
    data = same_data(d)
    one = run_here("train.py", *data, *EPOCHS, "--save", d / "one.pt", "--run-dir", d / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    codes = finish(start_nodes(d / "two", *data, *EPOCHS, "--save", d / "two.pt", "--run-dir", d / "two" / "run"))
    assert codes == [0, 0], [said(d / "two", k, "stderr")[-3000:] for k in (0, 1)]
    return {"dir": d, "data": data}


def test_two_nodes_match_one_process(runs):
    d = runs["dir"]
    a, b = weights(d / "one" / "last.pt"), weights(d / "two" / "run" / "last.pt")
    assert set(a) == set(b)
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k
    ma, mb = rows(d / "one" / "metrics.jsonl"), rows(d / "two" / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in ma] == [r["epoch"] for r in mb] == list(range(1, 9))
    for ra, rb in zip(ma, mb):
        assert ra["train_windows"] == rb["train_windows"] == 199
        for key in ("val_acc", "val_f1", "val_balanced_acc"):
            assert ra[key] == rb[key], key
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-5)
    assert ma[-1]["val_acc"] > 0.5                      # it learned (3 classes): the comparison means something
    summary = json.loads((d / "two" / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_batch"] == 32


def test_only_global_rank_0_writes(runs):
    d = runs["dir"]
    # the run directory holds what a one-process run's does, each file once: no second writer's
    # files, no temporary files left behind
    assert sorted(os.listdir(d / "two" / "run")) == sorted(os.listdir(d / "one"))
    assert len(rows(d / "two" / "run" / "metrics.jsonl")) == 8
    assert torch.load(d / "two.pt", weights_only=True)["epoch"] == torch.load(d / "one.pt", weights_only=True)["epoch"]
    # neither node wrote in its working directory (no runs/<date>): only its captured output is there
    for k in (0, 1):
        assert sorted(os.listdir(d / "two" / f"node{k}")) == ["stderr", "stdout"]
    # one node (whichever holds global rank 0) prints the run, each epoch once; the other prints nothing
    outs = [said(d / "two", k) for k in (0, 1)]
    main = [k for k in (0, 1) if "[epoch 001]" in outs[k]]
    assert len(main) == 1, outs
    printed = outs[main[0]]
    assert [printed.count(f"[epoch {e:03d}]") for e in range(1, 10)] == [1] * 8 + [0]
    assert "global batch 32 = 2 processes x ~16" in printed
    assert outs[1 - main[0]] == ""


def test_resume_after_losing_a_node(runs):
    """SIGKILL the node holding global rank 0 (the one that writes and hosts the rendezvous: the
    harder of the two losses; its agent and its worker) once epoch 1 is saved: the other node's
    agent ends non-zero by itself; both nodes started again with --resume RUN/last.pt finish the
    run with the weights and metrics of the uninterrupted two-node run."""
    d, cut = runs["dir"], runs["dir"] / "cut"
    nodes = start_nodes(cut, *runs["data"], *EPOCHS, "--save", cut / "best.pt", "--run-dir", cut / "run")
    # last.pt, not metrics.jsonl: rank 0 appends an epoch's metrics line before it saves last.pt
    last, deadline = cut / "run" / "last.pt", time.monotonic() + 120
    try:
        while not last.exists():                      # saved atomically: once there, it is whole
            assert time.monotonic() < deadline and all(n.poll() is None for n in nodes), "no epoch saved"
            time.sleep(0.01)
        main = next(k for k in (0, 1) if "run dir:" in said(cut, k))     # the node holding rank 0
        kill_node(nodes[main])                        # the node is gone: its agent and its worker
        start = time.monotonic()
        code = finish([nodes[1 - main]], timeout=120)[0]  # the survivor ends by itself, or the test fails
        waited = time.monotonic() - start
    finally:
        finish(nodes, timeout=0)
    assert code not in (0, "hung"), code
    print(f"rank 1's node ended with exit status {code} in {waited:.1f} s")
    saved = torch.load(cut / "run" / "last.pt", weights_only=True)["resume"]["epoch"]
    assert 1 <= saved < 8, saved
    assert not (cut / "run" / "summary.json").exists()

    again = start_nodes(cut / "again", "--resume", cut / "run" / "last.pt")
    assert finish(again) == [0, 0], [said(cut / "again", k, "stderr")[-3000:] for k in (0, 1)]
    assert any(f"resuming after epoch {saved}" in said(cut / "again", k) for k in (0, 1))
    a, b = weights(d / "two" / "run" / "last.pt"), weights(cut / "run" / "last.pt")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert rows(d / "two" / "run" / "metrics.jsonl") == rows(cut / "run" / "metrics.jsonl")
    sa = json.loads((d / "two" / "run" / "summary.json").read_text())
    sb = json.loads((cut / "run" / "summary.json").read_text())
    for key in ("best", "best_epoch", "epochs_run", "status"):
        assert sa[key] == sb[key], key
    assert sorted(os.listdir(cut / "run")) == sorted(os.listdir(d / "two" / "run"))
