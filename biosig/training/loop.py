"""The epochs: one training epoch, one evaluation pass, early stopping, and fit() -- the epoch
loop that runs them. Plain loops a reader can follow.

The loop is handed a model and a task (biosig.tasks) and never asks which ones. Losses are
summed per batch and weighted by the global batch size, so K processes splitting each global
batch produce the same gradient as one process taking it whole. The loop writes no files:
fit() hands each finished epoch to the run, which decides what it leaves behind.
"""
import contextlib
import math
import sys
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .. import named, normalize
from .augment import augment
from .batches import epoch_batches, iterate_batches, shard_range
from ..errors import UserError
from ..device import autocast, epoch_seed


def train_one_epoch(model, task, windows, batches, global_sizes, optimizer, scaler, *, device, amp,
                    preprocess_spec, clip, accum, ctx, workers=0, progress=None, augments=(), generator=None,
                    task_generator=None, frozen=()):
    """Train over this rank's `batches` (lists of positions into `windows`), each made into the
    task's inputs and targets (task.batch, drawing from `task_generator`) and augmented by
    `augments` (biosig.augment) with random numbers from `generator`. `frozen` parameters keep
    their values (their gradients are dropped before the step: AdamW skips them whole).

    Returns {"train_loss", "metrics" (the task's train_metrics), "samples", "seconds"}, reduced over ranks.
    """
    model.train()
    start = time.perf_counter()
    n_steps = len(batches)
    loss_total = seen = 0.0
    total_dtype = torch.float32 if device.type == "mps" else torch.float64      # MPS has no float64
    sums = {}
    for i, (x, y) in enumerate(iterate_batches(windows, batches, workers)):
        if device.type == "cuda" and named.first(x).device.type == "cpu":     # pinned: the copy runs beside the GPU's work
            x, y = named.each(torch.Tensor.pin_memory, x), named.each(torch.Tensor.pin_memory, y)
        x = normalize.apply(to_device(x, device), preprocess_spec)
        mix = None
        if augments:
            x, mix = augment(x, augments, generator)
        x, y = task.batch(x, to_device(y, device), task_generator)
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
                loss_sum = task.loss_sum(outputs, y) if mix is None else mix.loss_sum(task, outputs, y)
            loss = loss_sum * weight
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if stepping:
            if scaler is not None:
                scaler.unscale_(optimizer)          # clip true gradients, not scaled ones
            for p in frozen:
                p.grad = None
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        # summed on the device: reading a number back every step would make a GPU wait for the
        # Python loop (and the loop for the GPU); they are read once, after the epoch
        loss_total = loss_total + loss_sum.detach().to(total_dtype)
        for key, value in task.batch_stats(named.each(torch.Tensor.detach, outputs), y).items():
            sums[key] = sums.get(key, 0.0) + value
        seen += named.rows(y)
        if progress is not None:
            progress.update(1)
            if i % 10 == 0 or i == n_steps - 1:
                progress.set_postfix(loss=f"{float(loss_total) / max(seen, 1):.4f}", refresh=False)
    keys = sorted(sums)
    reduced = distributed.all_reduce_sum([float(loss_total), seen] + [float(sums[k]) for k in keys], ctx, device)
    loss_total, seen, sums = reduced[0], reduced[1], dict(zip(keys, reduced[2:]))
    if not math.isfinite(loss_total):
        raise UserError("training loss is not finite; lower --lr, or check the data's scale (--normalize, "
                        "--standardize)")
    return {"train_loss": loss_total / max(seen, 1), "metrics": task.train_metrics(sums, seen),
            "samples": int(seen), "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict_outputs(model, task, windows, batch, *, device, amp, preprocess_spec, ctx, workers=0):
    """Model outputs for every window, each computed on exactly one rank, gathered on all.

    Returns (outputs (N, ...) float32 CPU, targets (N, ...) CPU: the task's, from task.batch)
    in window order.
    """
    model.eval()
    lo, hi = shard_range(len(windows), ctx.rank, ctx.world)
    positions = [np.arange(s, min(s + batch, hi)) for s in range(lo, hi, batch)]
    # a rank with no window (fewer windows than ranks) still needs outputs of the right shape
    # and dtype for the gather: it scores one window and keeps none of it
    keep = len(positions) > 0
    outs, targets = [], []
    for x, y in iterate_batches(windows, positions if keep else [np.arange(1)], workers):
        x, y = task.batch(normalize.apply(to_device(x, device), preprocess_spec), to_device(y, device))
        with autocast(device.type, amp):
            outs.append(named.each(torch.Tensor.float, model(x)))
        targets.append(y)
    outs, targets = named.concat(outs, torch.cat), named.concat(targets, torch.cat)
    if not keep:
        outs, targets = named.take(outs, slice(0, 0)), named.take(targets, slice(0, 0))
    return (named.each(lambda a: distributed.gather_rows(a, ctx).cpu(), outs),
            named.each(lambda a: distributed.gather_rows(a, ctx).cpu(), targets))


def to_device(value, device):
    """A batch's tensor, or its dict of tensors (several inputs or targets), on `device`."""
    return named.each(lambda a: a.to(device, non_blocking=True), value)


def evaluate(model, task, windows, batch, *, device, amp, preprocess_spec, ctx, workers=0):
    """Validation metrics over the whole set, identical on every rank: {"loss", **task.report}."""
    outputs, targets = predict_outputs(model, task, windows, batch, device=device, amp=amp,
                                       preprocess_spec=preprocess_spec, ctx=ctx, workers=workers)
    metrics = {"loss": float(task.loss_sum(outputs, targets)) / max(1, named.rows(targets))}
    metrics.update(task.report(named.each(torch.Tensor.numpy, outputs), named.each(torch.Tensor.numpy, targets)))
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

    def take(self, value, epoch):
        """Record this epoch as the best whatever its value (no validation: the last epoch wins)."""
        self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        return True

    @property
    def should_stop(self):
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self):
        return {"mode": self.mode, "patience": self.patience, "min_delta": self.min_delta,
                "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


def fit(model, task, train_set, val_set, optimizer, scheduler, scaler, stopper, *, args, monitor, start_epoch,
        device, amp, preprocess_spec, ctx, on_epoch, log=print, frozen=(), frozen_until=None):
    """Epochs start_epoch..args.epochs: train, validate, step the LR schedule on `monitor`, early-stop.
    val_set None (--val-split 0): no validation, every epoch replaces the best. `frozen`
    parameters stay as they are up to epoch `frozen_until` (None: every epoch).

    After each epoch, on_epoch(epoch, stats, val, row, is_best) -- the run saves checkpoints and
    logs there. row: the flat metrics of the epoch (metrics.jsonl). Returns (status, last epoch).
    """
    epoch = start_epoch - 1
    for epoch in range(start_epoch, args.epochs + 1):
        torch.manual_seed(epoch_seed(args.seed, epoch, ctx.rank))
        # augmentation's own stream: switching it on leaves dropout's draws as they were
        generator = torch.Generator().manual_seed(epoch_seed(args.seed, epoch, ctx.rank) ^ 0xA06)
        # the task's (pretraining's masks): one stream for all ranks, which split each global batch
        task_generator = torch.Generator().manual_seed(epoch_seed(args.seed, epoch, 0) ^ 0x7A5)
        batches, sizes = epoch_batches(len(train_set), args.batch, args.seed, epoch, shuffle=True,
                                       rank=ctx.rank, world=ctx.world)
        limit = limit_batches(args.limit_train_batches, len(batches))
        batches, sizes = batches[:limit], sizes[:limit]
        progress = make_progress(ctx.is_main, len(batches), f"epoch {epoch}")
        stats = train_one_epoch(model, task, train_set, batches, sizes, optimizer, scaler, device=device, amp=amp,
                                preprocess_spec=preprocess_spec, clip=args.clip, accum=args.accum, ctx=ctx,
                                workers=args.workers, progress=progress, augments=args.augment, generator=generator,
                                task_generator=task_generator,
                                frozen=frozen if frozen_until is None or epoch <= frozen_until else ())
        if progress is not None:
            progress.close()
        row = {"epoch": epoch, "train_loss": stats["train_loss"], **task.row("train", stats["metrics"])}
        val = {}
        if val_set is not None:
            val = evaluate(model, task, val_set, args.batch, device=device, amp=amp,
                           preprocess_spec=preprocess_spec, ctx=ctx, workers=args.workers)
            row.update({"val_loss": val["loss"], **task.row("val", val)})
        row.update({"lr": optimizer.param_groups[0]["lr"], "train_windows": stats["samples"],
                    "seconds": round(stats["seconds"], 4)})
        scheduler.step(row[monitor])
        # with no validation set the latest epoch is the model
        is_best = stopper.update(row[monitor], epoch) if val_set is not None else stopper.take(row[monitor], epoch)
        on_epoch(epoch, stats, val, row, is_best)
        if stopper.should_stop:
            log(f"early stopping: {monitor} has not improved for {stopper.patience} epochs "
                f"(best {stopper.best:.4f} at epoch {stopper.best_epoch})")
            return "early_stopped", epoch
    return "completed", epoch


def limit_batches(limit, n_batches):
    """--limit-train-batches: None = all, 0<f<1 a fraction, an integer >= 1 a count."""
    if limit is None:
        return n_batches
    if 0 < limit < 1:
        return max(1, int(n_batches * limit))
    return min(n_batches, int(limit))


def make_progress(main, total, desc):
    """A tqdm bar only on rank 0 and only when stderr is a terminal (logs stay clean)."""
    if not (main and sys.stderr.isatty()):
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
