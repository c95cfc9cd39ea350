"""The run directory and its artifacts: config.json, metrics.jsonl, summary.json, last.pt.

Written by the main process only. JSON files are replaced atomically; metrics.jsonl gets
one line per epoch, appended and flushed.
"""
import json
import os
import shutil
import time

from ..atomic import atomic_path, can_create_files
from ..errors import UserError


# What a run writes in its directory (--save must not be one of them)
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "last.pt", "examples.npz", "report.png", "report.html",
             "trackers.json")


def default_run_dir(root="runs"):
    """runs/YYYYmmdd-HHMMSS, with -2, -3 … appended: never an existing run's directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, k = os.path.join(root, stamp), 1
    while os.path.exists(path):
        k += 1
        path = os.path.join(root, f"{stamp}-{k}")
    return path


def check_new_run_dir(path):
    """A run directory must not already hold a run (resume one with --resume instead)."""
    if os.path.exists(os.path.join(path, "config.json")) and not os.path.exists(os.path.join(path, "last.pt")):
        raise UserError(f"{path}: holds a run that never finished an epoch (no last.pt; killed while starting, "
                        f"or still starting); remove the directory or choose another --run-dir")
    if os.path.exists(os.path.join(path, "config.json")):
        raise UserError(f"{path}: already holds a run; resume it with --resume {os.path.join(path, 'last.pt')} "
                        f"or choose another --run-dir")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not can_create_files(parent):
        raise UserError(f"{path}: cannot create run directory (not writable)")


def remove_unstarted_run(path, made_dir):
    """Undo a run stopped before its first epoch was saved: the files a run writes at its
    start and, if the run made the directory, its empty subdirectories and itself."""
    for name in ("config.json", "metrics.jsonl", "trackers.json"):
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    for name in ("tensorboard", "wandb"):       # --tracker's local logs of this attempt
        shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    if not made_dir:
        return
    for root, _, _ in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(root)
        except OSError:      # not empty: something else lives there
            pass


def append_jsonl(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_jsonl(path, last_epoch):
    """Keep only the lines up to `last_epoch` (a resumed run rewrites later epochs)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        keep = [line for line in f if line.strip() and json.loads(line)["epoch"] <= last_epoch]
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.writelines(keep)
