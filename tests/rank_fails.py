"""train.py in which rank 1 cannot read its shard at its third batch (for the failure test).

Launched under torchrun by tests/test_distributed.py; not a test module itself.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import biosig.training.batches  # noqa: E402

if os.environ.get("RANK") == "1":
    read, calls = biosig.training.batches.Windows.read, [0]

    def failing_read(self, positions):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError("rank 1: simulated unreadable shard")
        return read(self, positions)

    biosig.training.batches.Windows.read = failing_read

import train  # noqa: E402
from biosig.errors import run_cli  # noqa: E402

run_cli(train.main)
