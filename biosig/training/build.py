"""A run's model, task network and optimizer, built from its RunConfig and data.

build_network: the model (its config from the flags and the data's shape), the task's network
around it, --init's weights, --freeze-encoder's check and the preprocessing; ready_to_fit: the
model fitted to the data where its contract asks (fit_data, a closed-form head), on the device,
with AdamW, the schedule, the GradScaler and early stopping, resumed state loaded, compiled and
wrapped for DDP as the flags say. The pieces (model_config, fit_to_data, fit_head_to_data,
training_parts) serve --model auto's cross-validation too (biosig.training.auto).
"""
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from .. import named, normalize as preprocess
from ..errors import UserError, warn
from ..models import MODELS, build_model, input_problem
from ..tasks import load_network_state
from . import distributed, init, options
from .batches import Windows, on_device, shard_range
from .loop import EarlyStopping
from .schedule import make_scheduler


def model_config(flags, shape, n_outputs):
    """The model's config dict: data shape, the task's output size, --drop, and the model's own
    options (its flags, --model-kwargs, or its defaults). Several inputs (shape {name: (N, C, F,
    T)}): a fusion model's, with every input's (C, F, T)."""
    cls = MODELS[flags.model]
    values = options.model_options(flags)
    if isinstance(shape, dict):
        modalities = {k: {"n_elec": v[1], "n_bands": v[2], "n_times": v[3]} for k, v in shape.items()}
        config = {"name": flags.model, "modalities": modalities, "n_outputs": n_outputs, "drop": flags.drop, **values}
        return cls.resolve_options(config)
    _, c, f, t = shape
    config = {"name": flags.model, "n_elec": c, "n_bands": f, "n_outputs": n_outputs, "drop": flags.drop, **values}
    if getattr(cls, "fixed_frames", False):        # built for one window length
        config["n_times"] = t
    resolve = getattr(cls, "resolve_options", None)
    return resolve(config, t) if resolve is not None else config


def batch_for_data(batch, n_train, world):
    """--batch, at most the training windows (a larger global batch trains one short step an epoch,
    without a word) -> (batch, the warning to print or None). Under DDP each process then takes
    its share of the training windows (n_train / world)."""
    if batch <= n_train:
        return batch, None
    share = f" ({world} processes x ~{n_train / world:g})" if world > 1 else ""
    return n_train, (f"--batch {batch} is more than the {n_train} training windows: using --batch {n_train}{share}, "
                     f"one step per epoch")


FIT_WINDOWS = 2048      # training windows a model's fit_data() sees at most


def fit_to_data(model, train_set, preprocess_spec, seed):
    """The Model contract's optional fit hook (MiniRocket's biases): called once, before the first
    epoch, with up to FIT_WINDOWS training windows (a seeded draw, the same on every rank),
    preprocessed as training sees them. What it fits is in the model's state_dict; a resumed
    run loads it instead."""
    fit = getattr(model, "fit_data", None)
    if fit is None:
        return
    positions = np.arange(len(train_set))
    if len(positions) > FIT_WINDOWS:
        positions = np.random.default_rng(seed).choice(positions, FIT_WINDOWS, replace=False)
    x, _ = train_set.read(positions)
    fit(preprocess.apply(x, preprocess_spec), seed=seed)


HEAD_BATCH = 256        # windows whose features are computed at once for a closed-form head


@torch.no_grad()
def head_data(model, task, train_set, preprocess_spec, ctx, device):
    """The head features of every window of train_set and their loss targets, in train_set's
    order -> (features (N, D) float32, targets (N, ...)): each rank computes its share of the
    windows, preprocessed and batched as evaluation sees them, with autocast off, and the rows
    are gathered on every rank."""
    lo, hi = shard_range(len(train_set), ctx.rank, ctx.world)
    feats, targets = [], []
    def on_device(a):
        return a.to(device)
    for start in range(lo, hi, HEAD_BATCH):
        x, y = train_set.read(np.arange(start, min(start + HEAD_BATCH, hi)))
        x, y = task.batch(preprocess.apply(named.each(on_device, x), preprocess_spec), named.each(on_device, y))
        with torch.autocast(device.type, enabled=False):
            feats.append(model.head_features(x).float())
        targets.append(y)
    if not feats:               # a rank with no window: empty rows of the right shape for the gather
        x, y = train_set.read(np.arange(1))
        x, y = task.batch(preprocess.apply(named.each(on_device, x), preprocess_spec), named.each(on_device, y))
        feats, targets = [model.head_features(x).float()[:0]], [named.take(y, slice(0, 0))]
    return (distributed.gather_rows(torch.cat(feats), ctx),
            named.each(lambda a: distributed.gather_rows(a, ctx), named.concat(targets, torch.cat)))


@torch.no_grad()
def fit_head_to_data(model, task, train_set, preprocess_spec, ctx, device):
    """The Model contract's closed-form head (MiniRocket's ridge): when the model solves its head
    from the features of every training window (head_windows) and the task says what to fit
    (least_squares), the features of every training window (head_data); rank 0 solves, every
    rank takes its head (broadcast). Returns the solve's record (penalty, leave-one-out errors) or None."""
    head_windows = getattr(model, "head_windows", None)
    if head_windows is None or not head_windows(len(train_set)):
        return None
    feats, targets = head_data(model, task, train_set, preprocess_spec, ctx, device)
    least = task.least_squares(targets)
    if least is None:
        return None
    solved = None
    if ctx.is_main:
        # on the GPU where the run has one; MPS has no float64
        solve_on = device if device.type != "mps" else torch.device("cpu")
        y, weights = least
        solved = model.fit_head(feats.to(solve_on), y.to(solve_on), None if weights is None else weights.to(solve_on))
    distributed.broadcast_tensors(list(model.state_dict(keep_vars=True).values()), ctx)
    return solved


def make_optimizer(params, lr, wd, device):
    """AdamW. Fused (one kernel over all parameters) on CPU and CUDA: the same update, and on
    CPU about a third of the per-parameter loop's time (1.1 against 3.0 ms a step for EEG2Arm at
    the guide's defaults, clipping included)."""
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **fused)


def training_parts(model, flags, mode, device, amp):
    """AdamW, the --schedule, fp16's GradScaler (or None) and early stopping, as the flags say."""
    optimizer = make_optimizer(model.parameters(), flags.lr, flags.wd, device)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return optimizer, make_scheduler(optimizer, flags, mode), scaler, EarlyStopping(mode, flags.patience, flags.min_delta)




def build_network(cfg, data, batch_warning=None):
    """The model for the data's shape and the task's network around it, --init's weights loaded
    (data["init"]: the tensors loaded and the log's line), and the preprocessing: a resumed run's,
    --init's when it asks for the same kind, else fitted on the training windows.
    -> (model, net, preprocess_spec); net is the model, or the task's network around it."""
    flags, task = cfg.flags, data["task"]
    model = build_model(model_config(flags, data["shape"], task.n_outputs))
    problem = input_problem(model, data["shape"])
    if problem:
        raise UserError(f"{named.first(flags.x)}: {problem}")
    if batch_warning:                    # after the checks: a refused run prints one line
        warn(batch_warning)
    net = task.network(model, data["shape"])
    if cfg.init is not None:
        loaded, new = init.load_matching(model, cfg.init, flags.init)
        # the task's own tensors (pretraining's decoder) too, when the checkpoint has matching ones
        extra, fresh = init.load_task_state(net, model, cfg.init)
        data["init"] = {"loaded": loaded, "line": init.describe(loaded + extra, new + fresh, flags.init)}
    elif cfg.resumed is not None:
        data["init"] = {"loaded": cfg.resumed["resume"].get("init_loaded", []), "line": None}
    if flags.freeze_encoder:         # (checked here, before anything is written)
        init.frozen_parameters(model, data["init"]["loaded"])
    if cfg.resumed is not None:      # the same data and split: keep its statistics, don't rescan X
        preprocess_spec = cfg.resumed["preprocess"]
    elif cfg.init is not None and not isinstance(data["shape"], dict) and (kept := init.preprocessing(
            cfg.init, flags.normalize, flags.standardize, tuple(data["shape"][1:3]))):
        preprocess_spec = {**kept, "from": flags.init}
    else:
        preprocess_spec = preprocess.fitted_spec(data["X"], data["train_idx"], flags.normalize, flags.standardize)
    return model, net, preprocess_spec


@dataclass
class Fitting:
    """What trains: model and net as the checkpoint holds them (the bare model, the task's network),
    trained (net compiled and DDP-wrapped as the flags say), the training and validation windows,
    the optimizer's parts, the parameters held fixed, and where the epochs start (prior: a resumed
    run's totals). solved: a closed-form head's record, or None."""
    model: object
    net: object
    trained: object
    train_set: object
    val_set: object
    optimizer: object
    scheduler: object
    scaler: object
    stopper: object
    frozen: list
    start_epoch: int
    prior: dict
    solved: dict = None


def ready_to_fit(cfg, ctx, device, data, model, net, preprocess_spec):
    """The model fitted to the data where its contract asks (a new run only), on the device, with
    its optimizer's parts; a resumed run's state loaded; compiled and DDP-wrapped. -> Fitting."""
    flags, task, resumed = cfg.flags, data["task"], cfg.resumed
    # on a GPU, a data set that fits is read from GPU memory (biosig.training.batches.on_device)
    train_set = on_device(Windows(data["X"], data["y"], data["train_idx"]), device, flags.workers)
    val_set = on_device(Windows(*data["val"]), device, flags.workers) if data["val"] is not None else None
    if resumed is None:
        fit_to_data(model, train_set, preprocess_spec, flags.seed)
    if flags.sync_bn:
        converted = distributed.convert_sync_batchnorm(net, device.type)
        model, net = (converted, converted) if net is model else (model, converted)
    net.to(device)
    solved = fit_head_to_data(model, task, train_set, preprocess_spec, ctx, device) if resumed is None else None
    frozen = init.frozen_parameters(model, data["init"]["loaded"]) if flags.freeze_encoder else []
    optimizer, scheduler, scaler, stopper = training_parts(net, flags, cfg.mode, device, cfg.amp)
    start_epoch, prior = 1, {"train_samples": 0, "train_seconds": 0.0, "wall_s": 0.0, "best_metrics": None}
    if resumed is not None:
        load_network_state(net, model, resumed["model_state"], resumed.get("task_state"))
        r = resumed["resume"]
        optimizer.load_state_dict(r["optimizer"])
        scheduler.load_state_dict(r["scheduler"])
        if scaler is not None and r.get("scaler"):
            scaler.load_state_dict(r["scaler"])
        stopper.load_state_dict(r["early_stopping"])
        stopper.patience, stopper.min_delta = flags.patience, flags.min_delta
        start_epoch, prior = r["epoch"] + 1, r["totals"]
    fixed = getattr(model, "fixed_parameters", None)
    if fixed is not None and fixed():           # a head solved in closed form: every epoch leaves it be
        frozen = list(frozen) + fixed()
    trained = torch.compile(net, backend=flags.compile_backend) if flags.compile else net
    if ctx.enabled:
        trained = DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None)
    return Fitting(model, net, trained, train_set, val_set, optimizer, scheduler, scaler, stopper, frozen,
                   start_epoch, prior, solved)
