"""One epoch of training and one pass of evaluation: plain loops a reader can follow.

The loop is handed a model and a task (biosig.tasks); it assumes neither. Losses are summed
per batch and weighted by the global batch size, so K processes splitting each global
batch produce the same gradient as one process taking it whole.
"""
import contextlib
import math
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from . import distributed, preprocess
from .checkpoint import bare_model
from .data import iterate_batches, shard_range


def autocast(device_type, amp):
    """The one mixed-precision context: off, bf16 or fp16 (the GradScaler goes with fp16)."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def train_one_epoch(model, task, windows, batches, global_sizes, optimizer, scaler, *, device, amp,
                    preprocess_spec, clip, accum, ctx, workers=0, progress=None):
    """Train over this rank's `batches` (lists of positions into `windows`).

    Returns {"train_loss", "train_acc", "samples", "seconds"}, reduced over ranks.
    """
    model.train()
    start = time.perf_counter()
    n_steps = len(batches)
    loss_total = correct = seen = 0.0
    for i, (x, y) in enumerate(iterate_batches(windows, batches, workers)):
        x = preprocess.apply(x.to(device, non_blocking=True), preprocess_spec)
        y = y.to(device, non_blocking=True)
        window_start = (i // accum) * accum
        window_len = min(accum, n_steps - window_start)       # the last window may be short
        stepping = i == window_start + window_len - 1
        # weight: DDP averages gradients over ranks, so world/(global size) gives a global mean
        weight = ctx.world / (global_sizes[i] * window_len)
        no_sync = (model.no_sync() if isinstance(model, DistributedDataParallel) and not stepping
                   else contextlib.nullcontext())
        with no_sync:
            with autocast(device.type, amp):
                outputs = model(x)
                loss_sum = task.loss_sum(outputs, y)
            loss = loss_sum * weight
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if stepping:
            if scaler is not None:
                scaler.unscale_(optimizer)          # clip true gradients, not scaled ones
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loss_total += float(loss_sum.detach())
        correct += float(task.batch_stats(outputs.detach(), y)["correct"])
        seen += len(y)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_total / max(seen, 1):.4f}", refresh=False)
    loss_total, correct, seen = distributed.all_reduce_sum([loss_total, correct, seen], ctx, device)
    if not math.isfinite(loss_total):
        raise FloatingPointError("training loss is not finite; lower --lr or check the data")
    return {"train_loss": loss_total / max(seen, 1), "train_acc": correct / max(seen, 1),
            "samples": int(seen), "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict_outputs(model, windows, batch, *, device, amp, preprocess_spec, ctx, workers=0):
    """Model outputs for every window, each computed on exactly one rank, gathered on all.

    Returns (outputs (N, K) float32 CPU, targets (N,) CPU) in window order.
    """
    model.eval()
    lo, hi = shard_range(len(windows), ctx.rank, ctx.world)
    positions = [np.arange(s, min(s + batch, hi)) for s in range(lo, hi, batch)]
    outs, targets = [], []
    for x, y in iterate_batches(windows, positions, workers):
        x = preprocess.apply(x.to(device, non_blocking=True), preprocess_spec)
        with autocast(device.type, amp):
            outs.append(model(x).float())
        targets.append(y.to(device))
    k = bare_model(model).config.get("n_outputs", 1)
    outs = torch.cat(outs) if outs else torch.zeros((0, k), device=device)
    targets = torch.cat(targets) if targets else torch.zeros((0,), dtype=torch.int64, device=device)
    return distributed.gather_rows(outs, ctx).cpu(), distributed.gather_rows(targets, ctx).cpu()


def evaluate(model, task, windows, batch, *, device, amp, preprocess_spec, ctx, workers=0):
    """Validation metrics over the whole set, identical on every rank: {"loss", "acc", ...}."""
    outputs, targets = predict_outputs(model, windows, batch, device=device, amp=amp,
                                       preprocess_spec=preprocess_spec, ctx=ctx, workers=workers)
    metrics = {"loss": float(task.loss_sum(outputs, targets)) / max(1, len(targets))}
    metrics.update(task.report(outputs.numpy(), targets.numpy()))
    return metrics


class EarlyStopping:
    """Tracks the best value of the monitored metric; says when patience has run out.

    patience 0 never stops. An improvement must beat the best by more than min_delta.
    """

    def __init__(self, mode, patience=0, min_delta=0.0):
        self.mode, self.patience, self.min_delta = mode, patience, min_delta
        self.best, self.best_epoch, self.bad_epochs = None, None, 0

    def improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value, epoch):
        """Record this epoch's value; return True if it is a new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self):
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self):
        return {"mode": self.mode, "patience": self.patience, "min_delta": self.min_delta,
                "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
