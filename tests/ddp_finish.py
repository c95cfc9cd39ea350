"""A DDP job that only starts and finishes the way train.py does (for the teardown test).

DistributedDataParallel, a few steps, the evaluation collectives, then distributed.cleanup()
and a normal interpreter exit. Each rank prints how many of gloo's threads outlived cleanup().
Launched under torchrun by tests/test_distributed.py; not a test module itself.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from biosig.training import distributed  # noqa: E402


def train_and_evaluate(ctx):
    """Like run._train: the DDP model is gone once this returns, before cleanup()."""
    model = DistributedDataParallel(torch.nn.Linear(8, 3))
    for _ in range(3):
        model(torch.randn(16, 8)).sum().backward()
    # the end of evaluate(): the last collectives, whose tensors Python lets go of at once
    distributed.all_reduce_sum([1.0, 2.0], ctx, "cpu")
    distributed.gather_rows(torch.randn(5 + ctx.rank, 3), ctx)


def gloo_threads():
    """gloo's worker and I/O threads still alive in this process (Linux names them)."""
    names = [open(f"/proc/self/task/{tid}/comm").read() for tid in os.listdir("/proc/self/task")]
    return sum("gloo" in name for name in names)


ctx = distributed.init("cpu")
try:
    train_and_evaluate(ctx)
finally:
    distributed.cleanup()
# one write per line: both ranks share torchrun's stdout
sys.stdout.write(f"rank {ctx.rank}: {gloo_threads()} gloo threads after cleanup\n")
