"""A training run, start to finish, as a short sequence of named phases:

  resolve        the flags -> one frozen RunConfig (biosig/training/resolve.py); every check a user's
                 input can fail happens before anything is written
  inputs         the data read, checked and split (prepare_data, biosig/training/inputs.py)
  settle         the output paths checked, --model auto's choice, --batch for the data: the one
                 place a RunConfig is rebuilt after resolve
  model and task build_network and ready_to_fit (biosig/training/build.py)
  fit            loop.fit, every epoch written by artifacts.EpochWriter
  test, report   the best checkpoint on the report's examples and the test windows; summary.json
                 and the report (biosig/training/artifacts.py)

Under torchrun every rank runs this same code; only rank 0 writes or prints. The run talks to
the task and the model only through their contracts (biosig.tasks, biosig.models).
"""
import dataclasses
import os
import time

import torch

from .. import checkpoint
from ..atomic import write_npz
from ..device import seed_everything
from ..errors import Interrupted, UserError
from ..report import run as report
from . import artifacts, distributed, options, rundir as runs
from .auto import choose_model
from .recipe import with_recipe
from .batches import Windows
from .build import batch_for_data, build_network, ready_to_fit
from .inputs import prepare_data
from .loop import evaluate, fit, predict_outputs
from .resolve import resolve
from .resume import interrupted_message
from ..tasks import load_network_state


def run(args, explicit=frozenset()):
    """Train as `args` (train.py's parsed flags) say; `explicit`: the names of those the command
    line gave. Returns the summary dict (also written to RUN_DIR/summary.json), or None when a
    resumed run had nothing left to train. Ctrl-C raises errors.Interrupted with
    the one line that says where the run stopped and how to resume it."""
    where = {"run_dir": None, "started": False, "made_dir": False, "epoch": None, "saved": None, "trackers": None}
    try:
        return _run(args, explicit, where)
    except BaseException as e:
        # stopped, or a user error found during training (a diverging loss): a run that saved no
        # epoch is undone, so that the same command simply runs again
        undone = isinstance(e, (KeyboardInterrupt, UserError)) and where["started"] and where["saved"] is None
        if where["trackers"] is not None:
            where["trackers"].close("discarded" if undone else "interrupted" if isinstance(e, KeyboardInterrupt)
                                    else "failed")
        if not isinstance(e, (KeyboardInterrupt, UserError)):
            raise
        if undone:
            runs.remove_unstarted_run(where["run_dir"], where["made_dir"])
        if isinstance(e, UserError):
            raise
        stopped, code = Interrupted.stopped_by(e)
        raise Interrupted(interrupted_message(where, stopped), code=code) from None


def _run(args, explicit, where):
    wall_start = time.time()
    cfg = resolve(args, explicit)
    if cfg.done:                    # a resumed run with nothing left to train
        if os.environ.get("RANK", "0") in ("", "0"):
            print(cfg.done)
        return None
    ctx = distributed.init(cfg.device.type)
    device = torch.device("cuda", ctx.local_rank) if ctx.enabled and cfg.device.type == "cuda" else cfg.device
    try:
        data = prepare_data(cfg.flags)
        seed_everything(cfg.flags.seed, cfg.flags.deterministic)
        cfg, batch_warning = settle(cfg, data, ctx, device)
        model, net, preprocess_spec = build_network(cfg, data, batch_warning)
        summary = _train(cfg, ctx, device, data, model, net, preprocess_spec, wall_start, where)
    finally:
        distributed.cleanup()
    return summary


def settle(cfg, data, ctx, device):
    """The one place a resolved RunConfig is rebuilt, once the data is read: the default run
    directory, --model auto's choice (with that model's recipe), --batch at most the training
    windows. The output paths are checked first: a bad --save costs no cross-validation.
    -> (the RunConfig, the --batch warning to print once the model is checked, or None)."""
    if not cfg.flags.resume:
        cfg = cfg.with_flags(run_dir=cfg.flags.run_dir or runs.default_run_dir())
        # every rank checks (only rank 0 writes), so a bad path stops all ranks alike
        runs.check_new_run_dir(cfg.flags.run_dir)
    check_outputs(cfg.flags)
    if cfg.flags.model == "auto":
        log = print if ctx.is_main else (lambda *a, **k: None)
        name, data["selection"] = choose_model(cfg.flags, cfg.explicit, data, device, cfg.amp, ctx, log)
        data["selected_at"] = time.time()       # the final training's seconds count from here
        cfg = dataclasses.replace(cfg, flags=with_recipe(cfg.flags.with_(model=name), cfg.explicit)[0],
                                  why_model=f"chosen by --model auto from {', '.join(data['selection']['candidates'])}")
        seed_everything(cfg.flags.seed, cfg.flags.deterministic)
    # recorded as the run's --batch (config.json, summary.json, last.pt); the given one as batch_given
    batch, too_large = batch_for_data(cfg.flags.batch, len(data["train_idx"]), ctx.world)
    if too_large and "batch" in cfg.explicit:
        data["batch_given"] = cfg.flags.batch
    elif cfg.resumed is not None and cfg.resumed["resume"].get("batch_given"):
        data["batch_given"] = cfg.resumed["resume"]["batch_given"]
    # the default batch quietly fits small data
    return cfg.with_flags(batch=batch), too_large if "batch" in cfg.explicit else None


def check_outputs(flags):
    """--save may go inside the run directory (runs/a/best.pt), which is created with the run,
    but never over the data or the run's own files."""
    inputs = [(f"--{d.replace('_', '-')}", path) for d in options.dests(options.PATH) if d != "save"
              for path in _paths(getattr(flags, d, None))]
    reserved = [os.path.join(flags.run_dir, name) for name in runs.RUN_FILES]
    checkpoint.check_writable(flags.save, created_with=flags.run_dir, inputs=inputs, reserved=reserved)


def _paths(value):
    """A path flag's paths: one, several by name ({name: path}), or none."""
    return list(value.values()) if isinstance(value, dict) else [value]


def _shown(value):
    """A path flag as the log names it: the path, or name=path, ... for several."""
    return ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value


def _train(cfg, ctx, device, data, model, net, preprocess_spec, wall_start, where):
    """Fit, then test and report. model: the bare model (what the checkpoint's model_state
    holds); net: the model or the task's network around it (task.network). -> the summary."""
    flags, task = cfg.flags, data["task"]
    log = print if ctx.is_main else (lambda *a, **k: None)
    fitting = ready_to_fit(cfg, ctx, device, data, model, net, preprocess_spec)
    tracked = artifacts.start_run(cfg, ctx, device, data, fitting, preprocess_spec, where, log)
    on_epoch = artifacts.EpochWriter(cfg, ctx, data, fitting, preprocess_spec, wall_start, where, tracked, log)
    where["epoch"] = fitting.start_epoch
    status, epoch = fit(fitting.trained, task, fitting.train_set, fitting.val_set, fitting.optimizer,
                        fitting.scheduler, fitting.scaler, fitting.stopper, args=flags, monitor=cfg.monitor,
                        start_epoch=fitting.start_epoch, device=device, amp=cfg.amp,
                        preprocess_spec=preprocess_spec, ctx=ctx, on_epoch=on_epoch, log=log, frozen=fitting.frozen,
                        frozen_until=None if flags.freeze_encoder is True else flags.freeze_encoder)
    test = test_and_examples(cfg, ctx, device, data, fitting, preprocess_spec, log)
    summary = artifacts.run_summary(cfg, ctx, data, fitting, on_epoch.totals, status, epoch, test, wall_start)
    artifacts.finish(cfg, ctx, data, fitting, summary, tracked, log)
    return summary


def test_and_examples(cfg, ctx, device, data, fitting, preprocess_spec, log):
    """The best checkpoint, loaded back: the report's examples (regression: predicted vs true;
    segmentation: frames) and, once, the held-out test windows -> the test metrics or None."""
    flags, task, model, net = cfg.flags, data["task"], fitting.model, fitting.net
    shown = data["val"] if data["val"] is not None else data["test"]
    shown = shown if hasattr(task, "examples") and not flags.no_report else None
    if data["test"] is not None or shown is not None:
        distributed.barrier(ctx)     # rank 0 has written --save
        best = checkpoint.load(flags.save)
        load_network_state(net, model, best["model_state"], best.get("task_state"))
    if shown is not None:
        outputs, targets = predict_outputs(net, task, Windows(*shown), flags.batch, device=device, amp=cfg.amp,
                                           preprocess_spec=preprocess_spec, ctx=ctx, workers=flags.workers)
        if ctx.is_main:
            write_npz(os.path.join(flags.run_dir, report.EXAMPLES), task.examples(outputs, targets))
    if data["test"] is None:
        return None
    test = artifacts.plain(evaluate(net, task, Windows(*data["test"]), flags.batch, device=device, amp=cfg.amp,
                                    preprocess_spec=preprocess_spec, ctx=ctx, workers=flags.workers))
    which = "best" if data["val"] is not None else "last"
    source = _shown(flags.x_test) if flags.x_test else f"--test-fold {flags.test_fold} of {_shown(flags.x)}"
    log(f"test ({source}, {which} epoch {fitting.stopper.best_epoch}): loss={test['loss']:.4f} "
        f"{task.brief(test, full=True)}")
    return test
