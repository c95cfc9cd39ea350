"""What a run leaves behind: RUN_DIR/config.json and the start-up log lines (start_run), every
epoch's metrics.jsonl row, --save when best and last.pt (EpochWriter), summary.json, the last line
and the report (finish). Only rank 0 writes or prints; every rank builds the same records.
"""
import os
import platform
import time

import numpy as np
import torch

from .. import checkpoint, named, normalize as preprocess
from ..atomic import write_json
from ..version import __version__
from ..report import run as report
from ..tasks import network_state
from . import rundir as runs, trackers


def run_record(cfg, ctx, device, data, fitting, preprocess_spec):
    """config.json: every resolved option, and what the run resolved from them and the data."""
    flags, task = cfg.flags, data["task"]
    config = flags.as_dict()
    config.update({"resolved": {"device": str(device), "threads": torch.get_num_threads(), "amp": cfg.amp,
                                "monitor": cfg.monitor, "mode": cfg.mode, "world_size": ctx.world,
                                "global_batch": flags.batch,
                                **({"batch_given": data["batch_given"]} if "batch_given" in data else {}),
                                "data_shape": named.each(list, data["shape"]), "task": task.config,
                                "model": dict(fitting.model.config), "n_params": n_params(fitting),
                                "split": data["split"], "preprocess": preprocess_spec},
                   "versions": {"biosig": __version__, "torch": torch.__version__, "numpy": np.__version__,
                                "python": platform.python_version()}})
    return config


def n_params(fitting):
    return sum(p.numel() for p in fitting.net.parameters())


def split_line(split, task):
    """The log's words on the split: 'split stratified: train 72 / val 18 | ...'."""
    if split["val"] is None:
        return f"no validation (--val-split 0): train {split['train']['windows']}, the last epoch is saved"
    folds = split.get("folds")
    held = (f", fold {folds['fold']} of {folds['k']}" if folds and folds["fold"] is not None else "") + (
        f", test fold {folds['test_fold']} of {folds['k']}" if folds and folds["test_fold"] is not None else "")
    return (f"split {split['method']}{held}: train {split['train']['windows']} / val {split['val']['windows']}"
            + (f" | groups {split['train']['groups']} / {split['val']['groups']}" if "groups" in split["val"] else "")
            + (f" | {task.split_text(split['train'], split['val'])}"
               if task.split_text(split['train'], split['val']) else ""))


def start_lines(cfg, ctx, device, data, fitting, preprocess_spec):
    """The start-up lines: the data, the model, --init's tensors, the run directory, a solved head."""
    flags, task, split = cfg.flags, data["task"], data["split"]
    shown = (", ".join(f"{k}={p} {data['shape'][k]}" for k, p in flags.x.items()) if isinstance(flags.x, dict)
             else f"{flags.x} {tuple(data['shape'])}")
    lines = [f"data: {shown} -> {task} | {split_line(split, task)}"
             + (f" | test {split['test']['windows']}" if "test" in split else ""),
             f"model: {flags.model} ({cfg.why_model}; {n_params(fitting):,} parameters) on {device}, {cfg.threads} | "
             f"amp {cfg.amp} | global batch {flags.batch}"
             + (f" = {ctx.world} processes x ~{flags.batch / ctx.world:g}" if ctx.world > 1 else "")
             + f" | preprocess: {preprocess.describe(preprocess_spec)}"]
    if data.get("init", {}).get("line"):
        how = "every epoch" if flags.freeze_encoder is True else f"the first {flags.freeze_encoder} epochs"
        lines.append(data["init"]["line"] + (f" | held fixed for {how} (--freeze-encoder)" if flags.freeze_encoder
                                             else ""))
    lines.append(f"run dir: {flags.run_dir}"
                 + (f" (resuming after epoch {fitting.start_epoch - 1})" if cfg.resumed else ""))
    solved = fitting.solved
    if solved is not None:
        how = (f"logistic regression by LBFGS, C = {1 / solved['penalty']:.3g}"
               if solved.get("solver") == "logistic" else f"ridge penalty {solved['penalty']:.3g} (the least "
               f"leave-one-out error of {len(solved['loo'])} penalties)")
        lines.append(f"head: solved on {len(fitting.train_set)} training windows before the first epoch, {how}; "
                     "the epochs only score it")
    return lines


def start_run(cfg, ctx, device, data, fitting, preprocess_spec, where, log):
    """Rank 0: the run directory, config.json (rewritten on resume: --epochs and the like may
    change), metrics.jsonl cut to the resumed epoch, the start-up lines. Every rank: the trackers,
    started. -> the Trackers."""
    flags, resumed = cfg.flags, cfg.resumed is not None
    config = plain(run_record(cfg, ctx, device, data, fitting, preprocess_spec))
    where["run_dir"] = flags.run_dir
    where["saved"] = fitting.start_epoch - 1 if resumed else None
    if ctx.is_main:
        where["made_dir"] = not os.path.exists(flags.run_dir)
        where["started"] = not resumed
        os.makedirs(flags.run_dir, exist_ok=True)
        os.makedirs(os.path.dirname(os.path.abspath(flags.save)), exist_ok=True)
        write_json(os.path.join(flags.run_dir, "config.json"), config)
        if resumed:
            runs.truncate_jsonl(metrics_path(flags), fitting.start_epoch - 1)
        for line in start_lines(cfg, ctx, device, data, fitting, preprocess_spec):
            log(line)
    tracked = where["trackers"] = trackers.Trackers(flags.tracker if ctx.is_main else (), flags.run_dir,
                                                    resume=resumed)
    tracked.start(config, fitting.start_epoch - 1)
    return tracked


def metrics_path(flags):
    return os.path.join(flags.run_dir or ".", "metrics.jsonl")


class EpochWriter:
    """loop.fit's on_epoch: what an epoch leaves behind (metrics.jsonl, --save when best, last.pt,
    the epoch line), and the run's totals (samples, seconds, the best epoch's metrics)."""

    def __init__(self, cfg, ctx, data, fitting, preprocess_spec, wall_start, where, tracked, log):
        self.cfg, self.ctx, self.data, self.fitting, self.preprocess_spec = cfg, ctx, data, fitting, preprocess_spec
        self.wall_start, self.where, self.tracked, self.log = wall_start, where, tracked, log
        self.totals = dict(fitting.prior)

    def __call__(self, epoch, stats, val, row, is_best):
        totals, fitting, flags, data = self.totals, self.fitting, self.cfg.flags, self.data
        totals["train_samples"] += stats["samples"]
        totals["train_seconds"] += stats["seconds"]
        if is_best:
            totals["best_metrics"], totals["best_row"] = val or None, row
        if not self.ctx.is_main:
            return
        runs.append_jsonl(metrics_path(flags), row)
        example = named.each(lambda s: [1, *s[1:]], data["shape"])        # [1, C, F, T] (each input's)
        signal = {"inputs": data["signal"]} if isinstance(data["shape"], dict) else data["signal"]
        payload = checkpoint.model_payload(fitting.model, data["task"], example, self.preprocess_spec, epoch,
                                           plain(val), data["channels"], network_state(fitting.net, fitting.model),
                                           data["ledger"], signal)
        if is_best:
            checkpoint.atomic_save(payload, flags.save)
        totals["wall_s"] = fitting.prior["wall_s"] + (time.time() - self.wall_start)
        payload["resume"] = self.resume_state(epoch)
        checkpoint.atomic_save(payload, os.path.join(flags.run_dir, "last.pt"))
        self.where["saved"], self.where["epoch"] = epoch, epoch + 1
        self.tracked.epoch(row)          # once saved: a resume never logs an epoch twice
        # printed once the epoch is saved: a run killed after this line resumes after this epoch
        task = data["task"]
        self.log(" ".join([f"[epoch {epoch:03d}] train: loss={stats['train_loss']:.4f}",
                           task.brief(stats["metrics"])]).rstrip()
                 + " | " + (" ".join([f"val: loss={val['loss']:.4f}", task.brief(val)]).rstrip() + " | " if val else "")
                 + f"lr={row['lr']:.2e}" + (" *" if is_best else ""))

    def resume_state(self, epoch):
        """last.pt's "resume": the options, the optimizer's parts, the totals, what --init loaded."""
        fitting, data = self.fitting, self.data
        return {"epoch": epoch, "args": plain(self.cfg.flags.as_dict()),
                "optimizer": fitting.optimizer.state_dict(), "scheduler": fitting.scheduler.state_dict(),
                "scaler": fitting.scaler.state_dict() if fitting.scaler is not None else None,
                "early_stopping": fitting.stopper.state_dict(), "totals": plain(self.totals),
                "init_loaded": data.get("init", {}).get("loaded", []), "batch_given": data.get("batch_given")}


def run_summary(cfg, ctx, data, fitting, totals, status, epoch, test, wall_start):
    """summary.json's contents."""
    flags, task, stopper = cfg.flags, data["task"], fitting.stopper
    summary = {
        "monitor": cfg.monitor, "mode": cfg.mode, "best": stopper.best, "best_epoch": stopper.best_epoch,
        "best_metrics": plain(totals["best_metrics"]), "best_row": plain(totals.get("best_row")),
        "epochs_run": epoch, "status": status,
        "checkpoint": os.path.abspath(flags.save), "run_dir": os.path.abspath(flags.run_dir or "."),
        "wall_s": round(fitting.prior["wall_s"] + (time.time() - wall_start), 3),
        "train_samples_per_s": round(totals["train_samples"] / max(totals["train_seconds"], 1e-9), 2),
        "world_size": ctx.world, "global_batch": flags.batch, "split": data["split"],
        "task": flags.task, "monitors": task.monitors, "model": {"name": flags.model, "why": cfg.why_model},
    }
    if "selection" in data:     # with the seconds from the choice to here: the winner's training and test
        summary["selection"] = {**data["selection"], "training_s": round(time.time() - data["selected_at"], 2)}
    if test is not None:
        summary["test"] = test
    return summary


def finish(cfg, ctx, data, fitting, summary, tracked, log):
    """Rank 0: summary.json, the last line, the report; the trackers closed on every rank."""
    flags, stopper = cfg.flags, fitting.stopper
    if ctx.is_main:
        write_json(os.path.join(flags.run_dir, "summary.json"), summary)
        kept = (f"best {cfg.monitor}={stopper.best:.4f} at epoch {stopper.best_epoch}" if data["val"] is not None
                else f"last epoch {stopper.best_epoch} (train_loss={stopper.best:.4f}; no validation)")
        log(f"{kept} -> {flags.save} | {summary['train_samples_per_s']:.0f} train samples/s | "
            f"{summary['wall_s']:.1f}s")
        files = [] if flags.no_report else write_report(flags.run_dir, log)
        tracked.finish(summary, [flags.save, *files])
    tracked.close("completed")


def write_report(run_dir, log):
    """report.png and report.html in the run directory (or one line saying why not) -> their paths."""
    missing = report.matplotlib_missing()
    if missing:
        log(missing)
        return []
    files = report.run_report(run_dir)
    log(f"plots: {files[1]} (and report.png)")
    return files


def plain(obj):
    """Convert numpy scalars, tuples etc. to plain Python for JSON and weights_only checkpoints."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj
