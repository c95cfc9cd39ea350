"""A training run, start to finish: check inputs, build, train (loop.fit), write artifacts.

The phases are functions: prepare_data (biosig/prepare.py), model_config, then run() and _train().
Every check a user's input can fail happens before anything is written. Under torchrun
every rank runs this same code; only rank 0 writes or prints. The run talks to the task and
the model only through their contracts (biosig.tasks, biosig.models).
"""
import os
import platform
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from .. import __version__, checkpoint, normalize as preprocess, threads
from ..atomic import write_json, write_npz
from . import distributed, options, init, rundir as runs, trackers
from ..report import run as report
from .batches import Windows, on_device, shard_range
from ..data import parquet
from .inputs import prepare_data
from ..errors import Interrupted, UserError, warn
from .loop import EarlyStopping, evaluate, fit, predict_outputs
from ..models import MODELS, build_model
from .resume import apply_resume, finished_message, interrupted_message
from .schedule import make_scheduler
from .auto import apply_recipe, choose_model
from ..device import resolve_amp, resolve_device, seed_everything
from ..tasks import TASKS, load_network_state, network_state


def model_config(args, shape, n_outputs):
    """The model's config dict: data shape, the task's output size, --drop, and the model's own
    options (its flags, --model-kwargs, or its defaults)."""
    cls = MODELS[args.model]
    values = options.model_options(args)
    _, c, f, t = shape
    config = {"name": args.model, "n_elec": c, "n_bands": f, "n_outputs": n_outputs, "drop": args.drop, **values}
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
    for start in range(lo, hi, HEAD_BATCH):
        x, y = train_set.read(np.arange(start, min(start + HEAD_BATCH, hi)))
        x, y = task.batch(preprocess.apply(x.to(device), preprocess_spec), y.to(device))
        with torch.autocast(device.type, enabled=False):
            feats.append(model.head_features(x).float())
        targets.append(y)
    if not feats:               # a rank with no window: empty rows of the right shape for the gather
        x, y = train_set.read(np.arange(1))
        x, y = task.batch(preprocess.apply(x.to(device), preprocess_spec), y.to(device))
        feats, targets = [model.head_features(x).float()[:0]], [y[:0]]
    return distributed.gather_rows(torch.cat(feats), ctx), distributed.gather_rows(torch.cat(targets), ctx)


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


def training_parts(model, args, mode, device, amp):
    """AdamW, the --schedule, fp16's GradScaler (or None) and early stopping, as args say."""
    optimizer = make_optimizer(model.parameters(), args.lr, args.wd, device)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return optimizer, make_scheduler(optimizer, args, mode), scaler, EarlyStopping(mode, args.patience, args.min_delta)


def run(args, explicit=frozenset()):
    """Train as `args` say. Returns the summary dict (also written to RUN_DIR/summary.json), or
    None when a resumed run had nothing left to train. Ctrl-C raises errors.Interrupted with
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
    for key in options.dests(options.PATH):
        value = getattr(args, key, None)
        # a y that is a parquet label-column name, not a file, stays as it is
        if value and not (key.startswith("y") and parquet.names_a_column(value)):
            setattr(args, key, os.path.abspath(value))
    resume_state = apply_resume(args, explicit) if args.resume else None
    init_ckpt = init.read_init(args, explicit) if args.init and resume_state is None else None
    why_model = apply_recipe(args, explicit) if resume_state is None else "the run being resumed"
    if init_ckpt is not None and "model" not in explicit:
        why_model = f"the model of --init {args.init}"
    task_cls = TASKS[args.task]
    if not (args.x and args.save and (args.y or parquet.is_parquet(args.x) or task_cls.target_kind is None)):
        raise UserError(("--x and --save are required" if task_cls.target_kind is None else
                         "--x, --y and --save are required") + " (unless resuming with --resume RUN_DIR/last.pt)")
    if args.freeze_encoder and not args.init:
        raise UserError("--freeze-encoder freezes the weights loaded by --init; give --init CHECKPOINT")
    if init_ckpt is not None:
        if args.model == "auto":
            raise UserError("--init loads into one model: give --model NAME, or leave --model out to take the "
                            f"checkpoint's ({init_ckpt['config'].get('name')})")
        init.take_preprocessing(args, explicit, init_ckpt)
    for name in args.augment or ():
        if name in task_cls.refused_augments:
            raise UserError(f"--augment {name} does not go with --task {args.task}: {task_cls.refused_augments[name]}")
    options.task_values(args)       # another task's flag (--loss with classification): one line, now
    problem = task_cls.model_problem(MODELS[args.model]) if args.model != "auto" else None
    if problem:
        raise UserError(problem)
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    where["threads"] = threads.apply(args.threads)      # before any math: the pool is sized once
    task_monitors = task_cls.monitors
    monitor = args.monitor or task_cls.default_monitor
    if monitor not in task_monitors:
        raise UserError(f"--monitor {monitor}: --task {args.task} monitors {', '.join(task_monitors)}")
    mode = task_monitors[monitor]
    if args.val_split == 0 and not args.x_val and args.fold is None:
        # no validation: the last epoch is the model; a plateau schedule watches the training loss
        for flag, given in (("--monitor", args.monitor), ("--patience", args.patience)):
            if given:
                raise UserError(f"{flag} needs validation windows, and --val-split 0 leaves none (give --x-val, "
                                f"or a --val-split above 0)")
        monitor, mode = "train_loss", "min"
    trackers.check_installed(args.tracker)
    if args.warmup and args.schedule != "cosine":
        raise UserError(f"--warmup {args.warmup} goes with --schedule cosine (this run's schedule is {args.schedule})")
    if resume_state is not None:
        done = finished_message(args, resume_state, mode)
        # (a run killed after its last epoch but before summary.json goes on: zero epochs, then the summary)
        if done and os.path.exists(os.path.join(os.path.dirname(args.resume), "summary.json")):
            if os.environ.get("RANK", "0") in ("", "0"):
                print(done)
            return None

    ctx = distributed.init(device.type)
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    try:
        data = prepare_data(args)
        task = data["task"]
        seed_everything(args.seed, args.deterministic)
        # the output paths before --model auto's cross-validation: a bad --save costs no training.
        # every rank checks (only rank 0 writes), so a bad path stops all ranks alike
        if not args.resume:
            args.run_dir = args.run_dir or runs.default_run_dir()
            runs.check_new_run_dir(args.run_dir)
        # --save may go inside the run directory (runs/a/best.pt), which is created with the run,
        # but never over the data or the run's own files
        inputs = [(f"--{d.replace('_', '-')}", getattr(args, d, None)) for d in options.dests(options.PATH)
                  if d != "save"]
        reserved = [os.path.join(args.run_dir, name) for name in runs.RUN_FILES]
        checkpoint.check_writable(args.save, created_with=args.run_dir, inputs=inputs, reserved=reserved)
        if args.model == "auto":
            log = print if ctx.is_main else (lambda *a, **k: None)
            args.model, data["selection"] = choose_model(args, explicit, data, device, amp, ctx, log)
            data["selected_at"] = time.time()       # the final training's seconds count from here
            apply_recipe(args, explicit)
            why_model = f"chosen by --model auto from {', '.join(data['selection']['candidates'])}"
            seed_everything(args.seed, args.deterministic)
        # recorded as the run's --batch (config.json, summary.json, last.pt); the given one as batch_given
        given, (args.batch, too_large) = args.batch, batch_for_data(args.batch, len(data["train_idx"]), ctx.world)
        if too_large and "batch" in explicit:
            data["batch_given"] = given
        elif resume_state is not None and resume_state["resume"].get("batch_given"):
            data["batch_given"] = resume_state["resume"]["batch_given"]
        config = model_config(args, data["shape"], task.n_outputs)
        model = build_model(config)
        n, c, f, t = data["shape"]
        problem = model.input_problem(c, f, t)
        if problem:
            raise UserError(f"{args.x}: {problem}")
        if too_large and "batch" in explicit:     # the default batch quietly fits small data
            warn(too_large)                       # after the checks: a refused run prints one line
        net = task.network(model, data["shape"])
        if init_ckpt is not None:
            loaded, new = init.load_matching(model, init_ckpt, args.init)
            # the task's own tensors (pretraining's decoder) too, when the checkpoint has matching ones
            extra, fresh = init.load_task_state(net, model, init_ckpt)
            data["init"] = {"loaded": loaded, "line": init.describe(loaded + extra, new + fresh, args.init)}
        elif resume_state is not None:
            data["init"] = {"loaded": resume_state["resume"].get("init_loaded", []), "line": None}
        if args.freeze_encoder:         # (checked here, before anything is written)
            init.frozen_parameters(model, data["init"]["loaded"])
        if resume_state is not None:    # the same data and split: keep its statistics, don't rescan X
            preprocess_spec = resume_state["preprocess"]
        elif init_ckpt is not None and (kept := init.preprocessing(init_ckpt, args.normalize,
                                                                         args.standardize, (c, f))):
            preprocess_spec = {**kept, "from": args.init}
        else:
            preprocess_spec = preprocess.fitted_spec(data["X"], data["train_idx"], args.normalize, args.standardize)
        summary = _train(args, ctx, device, amp, data, task, model, net, monitor, mode, preprocess_spec,
                         resume_state, wall_start, where, why_model)
    finally:
        distributed.cleanup()
    return summary


def _train(args, ctx, device, amp, data, task, model, net, monitor, mode, preprocess_spec, resume_state,
           wall_start, where, why_model):
    """model: the bare model (what the checkpoint's model_state holds); net: what trains, the
    model or the task's network around it (task.network)."""
    main = ctx.is_main
    log = print if main else (lambda *a, **k: None)
    n, c, f, t = data["shape"]
    # on a GPU, a data set that fits is read from GPU memory (biosig.train.batches.on_device)
    train_set = on_device(Windows(data["X"], data["y"], data["train_idx"]), device, args.workers)
    val_set = on_device(Windows(*data["val"]), device, args.workers) if data["val"] is not None else None

    if resume_state is None:
        fit_to_data(model, train_set, preprocess_spec, args.seed)
    if args.sync_bn:
        converted = distributed.convert_sync_batchnorm(net, device.type)
        model, net = (converted, converted) if net is model else (model, converted)
    net.to(device)
    solved = fit_head_to_data(model, task, train_set, preprocess_spec, ctx, device) if resume_state is None else None
    raw_model, raw_net = model, net
    frozen = init.frozen_parameters(model, data["init"]["loaded"]) if args.freeze_encoder else []
    optimizer, scheduler, scaler, stopper = training_parts(net, args, mode, device, amp)
    start_epoch, prior = 1, {"train_samples": 0, "train_seconds": 0.0, "wall_s": 0.0, "best_metrics": None}
    if resume_state is not None:
        load_network_state(raw_net, raw_model, resume_state["model_state"], resume_state.get("task_state"))
        r = resume_state["resume"]
        optimizer.load_state_dict(r["optimizer"])
        scheduler.load_state_dict(r["scheduler"])
        if scaler is not None and r.get("scaler"):
            scaler.load_state_dict(r["scaler"])
        stopper.load_state_dict(r["early_stopping"])
        stopper.patience, stopper.min_delta = args.patience, args.min_delta
        start_epoch = r["epoch"] + 1
        prior = r["totals"]
    fixed = getattr(raw_model, "fixed_parameters", None)
    if fixed is not None and fixed():           # a head solved in closed form: every epoch leaves it be
        frozen = list(frozen) + fixed()
    if args.compile:
        net = torch.compile(net, backend=args.compile_backend)
    if ctx.enabled:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    n_params = sum(p.numel() for p in raw_net.parameters())
    per_rank = args.batch / ctx.world
    config = {k: v for k, v in vars(args).items()}
    config.update({"resolved": {"device": str(device), "threads": torch.get_num_threads(), "amp": amp,
                                "monitor": monitor, "mode": mode, "world_size": ctx.world, "global_batch": args.batch,
                                **({"batch_given": data["batch_given"]} if "batch_given" in data else {}),
                                "data_shape": list(data["shape"]), "task": task.config,
                                "model": dict(raw_model.config), "n_params": n_params, "split": data["split"],
                                "preprocess": preprocess_spec},
                   "versions": {"biosig": __version__, "torch": torch.__version__, "numpy": np.__version__,
                                "python": platform.python_version()}})
    metrics_path = os.path.join(args.run_dir or ".", "metrics.jsonl")
    where["run_dir"] = args.run_dir
    where["saved"] = start_epoch - 1 if resume_state is not None else None
    if main:
        where["made_dir"] = not os.path.exists(args.run_dir)
        where["started"] = resume_state is None
        os.makedirs(args.run_dir, exist_ok=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        # config.json: every resolved option, rewritten on resume (--epochs and the like may change)
        write_json(os.path.join(args.run_dir, "config.json"), _plain(config))
        if resume_state is not None:
            runs.truncate_jsonl(metrics_path, start_epoch - 1)
        split = data["split"]
        if split["val"] is None:
            split_line = f"no validation (--val-split 0): train {split['train']['windows']}, the last epoch is saved"
        else:
            folds = split.get("folds")
            held = (f", fold {folds['fold']} of {folds['k']}" if folds and folds["fold"] is not None else "") + (
                f", test fold {folds['test_fold']} of {folds['k']}" if folds and folds["test_fold"] is not None else "")
            split_line = (f"split {split['method']}{held}: train {split['train']['windows']} / "
                          f"val {split['val']['windows']}"
                          + (f" | groups {split['train']['groups']} / {split['val']['groups']}"
                             if "groups" in split["val"] else "")
                          + (f" | {task.split_text(split['train'], split['val'])}"
                             if task.split_text(split['train'], split['val']) else ""))
        log(f"data: {args.x} {tuple(data['shape'])} -> {task} | {split_line}"
            + (f" | test {split['test']['windows']}" if "test" in split else ""))
        log(f"model: {args.model} ({why_model}; {n_params:,} parameters) on {device}, {where['threads']} | amp {amp} | "
            f"global batch {args.batch}" + (f" = {ctx.world} processes x ~{per_rank:g}" if ctx.world > 1 else "")
            + f" | preprocess: {preprocess.describe(preprocess_spec)}")
        if data.get("init", {}).get("line"):
            how = "every epoch" if args.freeze_encoder is True else f"the first {args.freeze_encoder} epochs"
            log(data["init"]["line"] + (f" | held fixed for {how} (--freeze-encoder)" if args.freeze_encoder else ""))
        log(f"run dir: {args.run_dir}" + (f" (resuming after epoch {start_epoch - 1})" if resume_state else ""))
        if solved is not None:
            how = (f"logistic regression by LBFGS, C = {1 / solved['penalty']:.3g}"
                   if solved.get("solver") == "logistic" else f"ridge penalty {solved['penalty']:.3g} (the least leave-one-out error of {len(solved['loo'])} "
                   "penalties)")
            log(f"head: solved on {len(train_set)} training windows before the first epoch, {how}; "
                "the epochs only score it")
    tracked = where["trackers"] = trackers.Trackers(args.tracker if main else (), args.run_dir,
                                                    resume=resume_state is not None)
    tracked.start(_plain(config), start_epoch - 1)

    example_shape = [1, c, f, t]
    totals = dict(prior)

    def on_epoch(epoch, stats, val, row, is_best):
        """What an epoch leaves behind: metrics.jsonl, --save when best, last.pt, the epoch line."""
        totals["train_samples"] += stats["samples"]
        totals["train_seconds"] += stats["seconds"]
        if is_best:
            totals["best_metrics"], totals["best_row"] = val or None, row
        if not main:
            return
        runs.append_jsonl(metrics_path, row)
        payload = checkpoint.model_payload(raw_model, task, example_shape, preprocess_spec, epoch, _plain(val),
                                           data["channels"], network_state(raw_net, raw_model), data["ledger"],
                                           data["signal"])
        if is_best:
            checkpoint.atomic_save(payload, args.save)
        totals["wall_s"] = prior["wall_s"] + (time.time() - wall_start)
        payload["resume"] = {
            "epoch": epoch, "args": _plain(vars(args)),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "early_stopping": stopper.state_dict(), "totals": _plain(totals),
            "init_loaded": data.get("init", {}).get("loaded", []), "batch_given": data.get("batch_given")}
        checkpoint.atomic_save(payload, os.path.join(args.run_dir, "last.pt"))
        where["saved"], where["epoch"] = epoch, epoch + 1
        tracked.epoch(row)          # once saved: a resume never logs an epoch twice
        # printed once the epoch is saved: a run killed after this line resumes after this epoch
        log(" ".join([f"[epoch {epoch:03d}] train: loss={stats['train_loss']:.4f}", task.brief(stats["metrics"])]).rstrip()
            + " | " + (" ".join([f"val: loss={val['loss']:.4f}", task.brief(val)]).rstrip() + " | " if val else "")
            + f"lr={row['lr']:.2e}" + (" *" if is_best else ""))

    where["epoch"] = start_epoch
    status, epoch = fit(net, task, train_set, val_set, optimizer, scheduler, scaler, stopper, args=args,
                        monitor=monitor, start_epoch=start_epoch, device=device, amp=amp,
                        preprocess_spec=preprocess_spec, ctx=ctx, on_epoch=on_epoch, log=log, frozen=frozen,
                        frozen_until=None if args.freeze_encoder is True else args.freeze_encoder)

    test = None
    # the report's examples (regression: predicted vs true; segmentation: frames), of the best checkpoint
    shown = data["val"] if data["val"] is not None else data["test"]
    shown = shown if hasattr(task, "examples") and not args.no_report else None
    if data["test"] is not None or shown is not None:
        distributed.barrier(ctx)     # rank 0 has written --save
        best = checkpoint.load(args.save)
        load_network_state(raw_net, raw_model, best["model_state"], best.get("task_state"))
    if shown is not None:
        outputs, targets = predict_outputs(raw_net, task, Windows(*shown), args.batch, device=device, amp=amp,
                                           preprocess_spec=preprocess_spec, ctx=ctx, workers=args.workers)
        if main:
            write_npz(os.path.join(args.run_dir, report.EXAMPLES), task.examples(outputs, targets))
    if data["test"] is not None:    # the best checkpoint, once, on the held-out test set
        test = _plain(evaluate(raw_net, task, Windows(*data["test"]), args.batch, device=device,
                               amp=amp, preprocess_spec=preprocess_spec, ctx=ctx, workers=args.workers))
        which = "best" if data["val"] is not None else "last"
        source = args.x_test or f"--test-fold {args.test_fold} of {args.x}"
        log(f"test ({source}, {which} epoch {stopper.best_epoch}): loss={test['loss']:.4f} "
            f"{task.brief(test, full=True)}")
    summary = {
        "monitor": monitor, "mode": mode, "best": stopper.best, "best_epoch": stopper.best_epoch,
        "best_metrics": _plain(totals["best_metrics"]), "best_row": _plain(totals.get("best_row")),
        "epochs_run": epoch, "status": status,
        "checkpoint": os.path.abspath(args.save), "run_dir": os.path.abspath(args.run_dir or "."),
        "wall_s": round(prior["wall_s"] + (time.time() - wall_start), 3),
        "train_samples_per_s": round(totals["train_samples"] / max(totals["train_seconds"], 1e-9), 2),
        "world_size": ctx.world, "global_batch": args.batch, "split": data["split"],
        "task": args.task, "monitors": task.monitors,
    }
    if "selection" in data:     # with the seconds from the choice to here: the winner's training and test
        summary["selection"] = {**data["selection"], "training_s": round(time.time() - data["selected_at"], 2)}
    if test is not None:
        summary["test"] = test
    if main:
        write_json(os.path.join(args.run_dir, "summary.json"), summary)
        kept = (f"best {monitor}={stopper.best:.4f} at epoch {stopper.best_epoch}" if data["val"] is not None else
                f"last epoch {stopper.best_epoch} (train_loss={stopper.best:.4f}; no validation)")
        log(f"{kept} -> {args.save} | {summary['train_samples_per_s']:.0f} train samples/s | "
            f"{summary['wall_s']:.1f}s")
        files = [] if args.no_report else write_report(args.run_dir, log)
        tracked.finish(summary, [args.save, *files])
    tracked.close("completed")
    return summary


def write_report(run_dir, log):
    """report.png and report.html in the run directory (or one line saying why not) -> their paths."""
    missing = report.matplotlib_missing()
    if missing:
        log(missing)
        return []
    files = report.run_report(run_dir)
    log(f"plots: {files[1]} (and report.png)")
    return files


def _plain(obj):
    """Convert numpy scalars, tuples etc. to plain Python for JSON and weights_only checkpoints."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj
