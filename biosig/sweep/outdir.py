"""A sweep's directory OUT: its lock (one sweep at a time; job-array tasks and the collector
side by side), its trial directories, and whether this command may run there (the same
train.py flags, or none trained with the old ones).
"""
import fcntl
import json
import os
import shlex

from ..errors import UserError


def acquire_lock(out, shared=False):
    """flock OUT/.lock for the sweep's lifetime (released by the kernel however the sweep ends).
    shared: a job-array task or a collector, which run side by side but never beside a sweep."""
    path = os.path.join(out, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(f"{out}: another sweep (pid {holder}) is running in this directory") from None
    if not shared:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def trial_dirs(out):
    """Ids of the trial directories in OUT/trials."""
    trials_dir = os.path.join(out, "trials")
    return sorted(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else []


def trained_trials(out):
    """Ids of the trials in OUT/trials that trained at least one epoch (run/last.pt or run/summary.json)."""
    return [tid for tid in trial_dirs(out) if any(os.path.exists(os.path.join(out, "trials", tid, "run", name))
                                                  for name in ("last.pt", "summary.json"))]


def check_out_dir(out, train_flags):
    """OUT must be new, empty, or a sweep run with the same train.py flags (the trials' ids do
    not encode them, so other flags would mix different experiments). Returns the flags OUT was
    swept with when they differ but no trial trained with them (a command fixed after all its
    trials failed): its trials are then started afresh. Else None."""
    if not os.path.exists(out):
        return None
    if not os.path.isdir(out):
        raise UserError(f"--out {out}: exists and is not a directory")
    state_path = os.path.join(out, "sweep.json")
    if not os.path.exists(state_path):
        if set(os.listdir(out)) - {".lock"}:
            raise UserError(f"--out {out}: exists and is not a sweep directory (no sweep.json); choose another")
        return None
    try:
        with open(state_path) as f:
            before = json.load(f)["train_flags"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{state_path}: unreadable; move it away to start this sweep again") from None
    if before == train_flags:
        return None
    trained = trained_trials(out)
    if trained:
        raise UserError(f"--out {out}: was swept with train.py flags '{shlex.join(before)}' ({len(trained)} "
                        f"trial(s) trained with them), this command gives '{shlex.join(train_flags)}'; "
                        f"use another --out")
    return before
