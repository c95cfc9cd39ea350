"""Continuing a run: last.pt's options, whether anything is left to train, and what to tell a
user who pressed Ctrl-C (where the run stopped, and the exact command that resumes it)."""
import os
import shlex
import shutil
import sys

from .. import checkpoint
from . import options
from ..errors import UserError
from .loop import EarlyStopping


def read_resume(flags, explicit):
    """Load RUN_DIR/last.pt and continue with its options: run-defining ones given again must
    agree; others (--epochs, --patience, --device, ...) may be changed on the command line.
    flags: the command line's (biosig.training.resolve.Flags) -> (last.pt's contents, the run's flags)."""
    state = checkpoint.load(flags.resume, what="resume checkpoint")
    if "resume" not in state:
        raise UserError(f"{flags.resume}: a model checkpoint, not a resume checkpoint (use RUN_DIR/last.pt)")
    run_defining = options.dests(options.RUN)
    changes = {}
    for key, value in state["resume"]["args"].items():
        if key in ("resume", "run_dir") or not hasattr(flags, key):
            continue
        if key in explicit:
            # the same --batch as the run's, which was more than its training windows (build.batch_for_data)
            if key == "batch" and getattr(flags, key) == state["resume"].get("batch_given"):
                changes["batch"] = value
                continue
            if key in run_defining and getattr(flags, key) != value:
                def shown(v):
                    return "not given" if v is None else "given" if v is True else v
                raise UserError(f"{flags.resume}: --{key.replace('_', '-')} {shown(getattr(flags, key))} differs from "
                                f"the run being resumed ({shown(value)}); resume with the same options")
            continue
        changes[key] = value
    changes["run_dir"] = os.path.dirname(os.path.abspath(flags.resume))
    return state, flags.with_(**changes)


def finished_message(flags, state, mode):
    """None if the run in last.pt `state` has epochs left to train, else the one line saying it
    is complete and how to extend it."""
    r = state["resume"]
    stopper = EarlyStopping(mode, flags.patience, flags.min_delta)
    stopper.load_state_dict(r["early_stopping"])
    again = shlex.join(resume_command(flags.resume))
    if r["epoch"] >= flags.epochs:
        done = (f"{r['epoch']} of {flags.epochs} epochs" if r["epoch"] == flags.epochs
                else f"it has trained {r['epoch']} epochs, more than --epochs {flags.epochs}")
        return (f"{flags.resume}: the run is complete ({done}; best at epoch {stopper.best_epoch}); nothing to "
                f"train. To train longer: {again} --epochs {r['epoch'] + 10} (--epochs is the total)")
    if stopper.should_stop:
        return (f"{flags.resume}: the run is complete (stopped early at epoch {r['epoch']}: no improvement for "
                f"{stopper.bad_epochs} epochs, --patience {flags.patience}); nothing to train. To go on: {again} "
                f"--patience {stopper.bad_epochs + 5} (or --patience 0: no early stopping)")
    return None


def resume_command(last):
    """The command that resumes from `last`: `python train.py --resume last` as the user typed
    the script (`biosig-train --resume last` for the installed command), or under torchrun the launcher's own command line (read from the parent
    process) up to the script, so that the same processes resume."""
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py"
    command = sys.argv and os.path.basename(sys.argv[0]) == "biosig-train"   # the installed command
    if command:
        script = "biosig-train" if shutil.which("biosig-train") == os.path.abspath(sys.argv[0]) else sys.argv[0]
    if "TORCHELASTIC_RUN_ID" in os.environ:
        try:
            with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
                launcher = [a.decode() for a in f.read().split(b"\0") if a]
            end = next(i for i, a in enumerate(launcher) if os.path.basename(a) == os.path.basename(script))
            return launcher[:end + 1] + ["--resume", last]
        except (OSError, StopIteration, UnicodeDecodeError):
            return ["torchrun", "...", script, "--resume", last]
    return ([] if command else ["python"]) + [script, "--resume", last]


def interrupted_message(where, stopped="interrupted"):
    """The one line printed on Ctrl-C or SIGTERM (empty on ranks that do not print). `where` is
    the run's progress: run_dir, started, epoch, saved (the run has already removed a run
    directory that saved no epoch)."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        return ""
    if where["saved"] is not None:
        last = os.path.join(where["run_dir"], "last.pt")
        return (f"{stopped} in epoch {where['epoch']}; epoch {where['saved']} is saved. Resume with: "
                f"{shlex.join(resume_command(last))}")
    if where["started"]:
        return (f"{stopped} in epoch {where['epoch'] or 1}, before any epoch was saved; nothing was kept "
                f"(run the same command again to start over)")
    return f"{stopped} before training started; nothing was written"
