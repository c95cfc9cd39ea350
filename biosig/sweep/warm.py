"""Warm starts: a trial's Python, started before its trial while the slot's previous trial still
runs, with what every trial imports already imported (torch, and torch._dynamo, which
torch.optim imports at the first optimizer step: together about 2 s of a trial's start on 2
cores). It then waits on stdin for one line, {"argv": [python, train.py, flags...], "log":
path}, points its stdout and stderr at the log (appending) and runs train.py exactly as
`python train.py flags...` would: same sys.path[0], sys.argv and __main__.

The process is started as the trials are (its own session, the slot's environment, killed with
the sweep); an empty stdin (no trial came) makes it exit 0.
"""
import os
import sys

# run by the sweep as [python, "-c", CODE, package root, train.py]
CODE = "import sys; sys.path.insert(0, sys.argv[1]); from biosig.sweep.warm import main; main(sys.argv[2])"


def command(train_script):
    """The argv that starts a warm process for `train_script`."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, "-c", CODE, root, train_script]


def main(script):
    import importlib
    import json
    import runpy
    sys.path[:2] = [os.path.dirname(os.path.abspath(script))]   # what `python train.py` has first
    for name in ("torch", "torch._dynamo", "numpy"):
        importlib.import_module(name)
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    job = json.loads(line)
    fd = os.open(job["log"], os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = job["argv"][1:]
    runpy.run_path(script, run_name="__main__")
