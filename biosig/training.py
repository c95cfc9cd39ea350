"""A training run, start to finish: check inputs, build, train epoch by epoch, write artifacts.

The phases are functions: prepare_data, build_model, resume_state, then the epoch loop in
run(). Every check a user's input can fail happens before anything is written. Under
torchrun every rank runs this same code; only rank 0 writes or prints.
"""
import json
import os
import platform
import random
import shlex
import sys
import time

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from . import __version__, checkpoint, distributed, parquet, preprocess, runs
from .data import (Windows, channel_stats, check_labels, empty_classes, epoch_batches, load_groups, read_source,
                   split_indices)
from .errors import Interrupted, UserError, warn
from .loop import EarlyStopping, evaluate, train_one_epoch
from .models import build_model
from .tasks import Classification

# Options that define a run: a resumed run takes them from last.pt, and one given again on
# the command line must agree. The others (epochs, patience, device, workers, ...) may change.
RUN_DEFINING = ("x", "y", "save", "classes", "elec", "bands", "model", "cnn_time_pool", "frame_embed",
                "drop", "layers", "heads", "batch", "lr", "wd", "val_split", "seed", "split", "groups",
                "normalize", "amp", "clip", "accum", "monitor", "lr_factor", "lr_patience",
                "limit_train_batches", "sync_bn", "deterministic", "class_names", "x_col", "signal_cols",
                "label_col", "group_col", "x_val", "y_val", "standardize")


# File options stored as absolute paths, so a run can be resumed from any directory.
PATH_OPTIONS = ("x", "y", "save", "groups", "class_names", "x_val", "y_val", "x_test", "y_test")


def resolve_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this PyTorch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: MPS is not available on this machine")
    return torch.device(name)


def resolve_amp(amp, device):
    """auto: fp16 (with GradScaler) on CUDA, off elsewhere. fp16 needs CUDA; bf16 runs anywhere."""
    if amp == "auto":
        return "fp16" if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise UserError(f"--amp fp16 needs a CUDA device (this run is on {device.type}); use --amp bf16 or off")
    return amp


def epoch_seed(seed, epoch, rank):
    """Each epoch reseeds torch from (seed, epoch, rank): a resumed run draws what it would have."""
    return (seed * 1_000_003 + epoch * 9_176 + rank * 7_919) % (2 ** 63)


def _read(x, y, args):
    """data.read_source with this run's parquet options and --load."""
    return read_source(x, y, x_col=args.x_col, signal_cols=args.signal_cols, label_col=args.label_col,
                       group_col=args.group_col, load=args.load)


def prepare_data(args):
    """Open and check the training data (and explicit validation/test data); split.

    Returns a dict: X, y, train_idx, val (X, y, idx), test (X, y) or None, n_classes,
    shape (N, C, F, T), class_names, split (counts for summary.json)."""
    X, y, groups, where = _read(args.x, args.y, args)
    n, c, f, t = X.shape
    for flag, given, seen in (("--elec", args.elec, c), ("--bands", args.bands, f)):
        if given is not None and given != seen:
            raise UserError(f"{args.x}: {flag} {given} contradicts the data, which has {seen} "
                            f"(X shape {tuple(X.shape)} is (N, C, F, T))")
    extra = {}
    for name, xp, yp in (("val", args.x_val, args.y_val), ("test", args.x_test, args.y_test)):
        if bool(xp) != bool(yp) and not (xp and parquet.is_parquet(xp)):
            raise UserError(f"--x-{name} and --y-{name} go together")
        if xp:
            Xe, ye, _, where_e = _read(xp, yp, args)
            if Xe.shape[1:3] != (c, f):
                raise UserError(f"{xp}: windows are (C, F) = {tuple(Xe.shape[1:3])}, the training data's are {(c, f)}")
            extra[name] = (Xe, ye, where_e)
    n_classes = args.classes
    if n_classes is None:    # K from all labelled data, so a class missing from training is still a class
        n_classes = int(max(int(lab.max()) for lab in [y] + [e[1] for e in extra.values()])) + 1
    y, n_classes = check_labels(y, where, n_classes)
    for name, (Xe, ye, where_e) in extra.items():
        check_labels(ye, where_e, n_classes, min_classes=1)
    # a class no window has (labels 1..K, or one typo 7 among 0..2) would silently train a model
    # with a phantom class: refuse, unless --classes says so on purpose
    empty, why = empty_classes([y] + [e[1] for e in extra.values()], n_classes)
    if empty and args.classes is None:
        raise UserError(f"{where}: no window has class {', '.join(map(str, empty))} of 0..{n_classes - 1}: {why} "
                        f"(or give --classes {n_classes} to train with empty classes)")
    if empty:
        warn(f"{where}: no window has class {', '.join(map(str, empty))} of --classes {n_classes}; "
             f"the model will have {len(empty)} empty class(es)")

    if args.groups:
        groups = load_groups(args.groups, n)
    if args.split == "group" and groups is None and "val" not in extra:
        raise UserError("--split group needs --groups groups.npy (or --group-col with parquet): "
                        "one group id, e.g. subject, per window")
    if "val" in extra:
        train_idx = np.arange(n)
        val = (extra["val"][0], extra["val"][1], np.arange(len(extra["val"][0])))
    else:
        train_idx, val_idx = split_indices(y, args.val_split, args.seed, args.split, groups, where=args.x)
        val = (X, y, val_idx)
    class_names = None
    if args.class_names:
        try:
            with open(args.class_names) as fh:
                class_names = json.load(fh)
        except (OSError, ValueError) as e:
            raise UserError(f"{args.class_names}: cannot read class names ({e})") from None
        if not (isinstance(class_names, list) and len(class_names) == n_classes
                and all(isinstance(s, str) for s in class_names)):
            raise UserError(f"{args.class_names}: expected a JSON list of {n_classes} class-name strings")

    def describe(labels, idx, grp, list_groups=False):
        d = {"windows": int(len(idx)), "class_counts": np.bincount(labels[idx], minlength=n_classes).tolist()}
        if grp is not None:
            ids = np.unique(grp[idx])
            d["groups"] = int(len(ids))
            if list_groups:     # which subjects/recordings were held out, to report or reuse
                d["group_ids"] = ids.tolist()
        return d

    split = {"method": "explicit" if "val" in extra else args.split, "train": describe(y, train_idx, groups),
             "val": describe(val[1], val[2], groups if "val" not in extra else None, list_groups=True)}
    if "val" in extra:
        split["val_source"] = args.x_val
    if "test" in extra:
        Xt, yt, _ = extra["test"]
        split["test"] = describe(yt, np.arange(len(yt)), None)
    channels = parquet.parse_columns(args.signal_cols) if args.signal_cols and parquet.is_parquet(args.x) else None
    return {"X": X, "y": y, "n_classes": n_classes, "shape": (n, c, f, t), "train_idx": train_idx,
            "channels": channels,
            "val": val, "test": (extra["test"][0], extra["test"][1]) if "test" in extra else None,
            "class_names": class_names, "split": split}


def model_config(args, shape, n_outputs):
    _, c, f, _ = shape
    return {"name": args.model, "n_elec": c, "n_bands": f, "n_outputs": n_outputs,
            "cnn_time_pool": args.cnn_time_pool, "frame_embed": args.frame_embed, "drop": args.drop,
            "n_layers": args.layers, "n_heads": args.heads}


def apply_resume(args, explicit):
    """Load RUN_DIR/last.pt and continue with its options: run-defining ones given again must
    agree; others (--epochs, --patience, --device, ...) may be changed on the command line."""
    state = checkpoint.load(args.resume, what="resume checkpoint")
    if "resume" not in state:
        raise UserError(f"{args.resume}: a model checkpoint, not a resume checkpoint (use RUN_DIR/last.pt)")
    saved = state["resume"]["args"]
    for key, value in saved.items():
        if key in ("resume", "run_dir") or not hasattr(args, key):
            continue
        if key in explicit:
            if key in RUN_DEFINING and getattr(args, key) != value:
                raise UserError(f"{args.resume}: --{key.replace('_', '-')} {getattr(args, key)} differs from the "
                                f"run being resumed ({value}); resume with the same options")
            continue
        setattr(args, key, value)
    args.run_dir = os.path.dirname(os.path.abspath(args.resume))
    return state


def seed_everything(seed, deterministic, device):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def finished_message(args, state, mode):
    """None if the run in last.pt `state` has epochs left to train, else the one line saying it
    is complete and how to extend it."""
    r = state["resume"]
    stopper = EarlyStopping(mode, args.patience, args.min_delta)
    stopper.load_state_dict(r["early_stopping"])
    again = shlex.join(resume_command(args.resume))
    if r["epoch"] >= args.epochs:
        return (f"{args.resume}: the run is complete ({r['epoch']} of {args.epochs} epochs, best at epoch "
                f"{stopper.best_epoch}); nothing to train. To train longer: {again} --epochs {r['epoch'] + 10}")
    if stopper.should_stop:
        return (f"{args.resume}: the run is complete (stopped early at epoch {r['epoch']}: no improvement for "
                f"{stopper.bad_epochs} epochs, --patience {args.patience}); nothing to train. To go on: {again} "
                f"--patience {stopper.bad_epochs + 5} (or --patience 0: no early stopping)")
    return None


def run(args, explicit=frozenset()):
    """Train as `args` say. Returns the summary dict (also written to RUN_DIR/summary.json), or
    None when a resumed run had nothing left to train. Ctrl-C raises errors.Interrupted with
    the one line that says where the run stopped and how to resume it."""
    where = {"run_dir": None, "started": False, "made_dir": False, "epoch": None, "saved": None}
    try:
        return _run(args, explicit, where)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(args, where)) from None


def interrupted_message(args, where):
    """The one line printed on Ctrl-C (empty on ranks that do not print). A run stopped before
    its first epoch was saved is removed, so the same command can simply be run again."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        return ""
    if where["saved"] is not None:
        last = os.path.join(where["run_dir"], "last.pt")
        return (f"interrupted in epoch {where['epoch']}; epoch {where['saved']} is saved. Resume with: "
                f"{shlex.join(resume_command(last))}")
    if where["started"]:
        runs.remove_unstarted_run(where["run_dir"], where["made_dir"])
        return (f"interrupted in epoch {where['epoch'] or 1}, before any epoch was saved; nothing was kept "
                f"(run the same command again to start over)")
    return "interrupted before training started; nothing was written"


def resume_command(last):
    """The command that resumes from `last`: `python train.py --resume last` as the user typed
    the script, or under torchrun the launcher's own command line (read from the parent
    process) up to the script, so that the same processes resume."""
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py"
    if "TORCHELASTIC_RUN_ID" in os.environ:
        try:
            with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
                launcher = [a.decode() for a in f.read().split(b"\0") if a]
            end = next(i for i, a in enumerate(launcher) if os.path.basename(a) == os.path.basename(script))
            return launcher[:end + 1] + ["--resume", last]
        except (OSError, StopIteration, UnicodeDecodeError):
            return ["torchrun", "...", script, "--resume", last]
    return ["python", script, "--resume", last]


def _run(args, explicit, where):
    wall_start = time.time()
    for key in PATH_OPTIONS:
        value = getattr(args, key, None)
        # a y that is a parquet label-column name, not a file, stays as it is
        if value and not (key.startswith("y") and parquet.names_a_column(value)):
            setattr(args, key, os.path.abspath(value))
    resume_state = apply_resume(args, explicit) if args.resume else None
    if not (args.x and args.save and (args.y or parquet.is_parquet(args.x))):
        raise UserError("--x, --y and --save are required (unless resuming with --resume RUN_DIR/last.pt)")
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    task_monitors = Classification.monitors
    monitor = args.monitor or Classification.default_monitor
    if monitor not in task_monitors:
        raise UserError(f"--monitor {monitor}: choose one of {', '.join(task_monitors)}")
    mode = task_monitors[monitor]
    if resume_state is not None:
        done = finished_message(args, resume_state, mode)
        if done:
            if os.environ.get("RANK", "0") in ("", "0"):
                print(done)
            return None

    ctx = distributed.init(device.type)
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    try:
        data = prepare_data(args)
        task = Classification(data["n_classes"])
        seed_everything(args.seed, args.deterministic, device)
        model = build_model(model_config(args, data["shape"], task.n_outputs))
        n, c, f, t = data["shape"]
        problem = model.input_problem(c, f, t)
        if problem:
            raise UserError(f"{args.x}: {problem}")
        # every rank checks (only rank 0 writes), so a bad path stops all ranks alike
        if not args.resume:
            args.run_dir = args.run_dir or runs.default_run_dir()
            runs.check_new_run_dir(args.run_dir)
        # --save may go inside the run directory (runs/a/best.pt), which is created with the run
        checkpoint.check_writable(args.save, created_with=args.run_dir)
        if resume_state is not None:    # the same data and split: keep its statistics, don't rescan X
            preprocess_spec = resume_state["preprocess"]
        else:
            mean = std = None
            if args.standardize:    # statistics of the training split only: nothing of validation leaks in
                mean, std = channel_stats(data["X"], data["train_idx"])
            preprocess_spec = preprocess.make_spec(normalize=args.normalize, mean=mean, std=std)
        summary = _train(args, ctx, device, amp, data, task, model, monitor, mode, preprocess_spec,
                         resume_state, wall_start, where)
    finally:
        distributed.cleanup()
    return summary


def _train(args, ctx, device, amp, data, task, model, monitor, mode, preprocess_spec, resume_state, wall_start,
           where):
    main = ctx.is_main
    log = print if main else (lambda *a, **k: None)
    n, c, f, t = data["shape"]
    train_set = Windows(data["X"], data["y"], data["train_idx"])
    val_set = Windows(*data["val"])

    if args.sync_bn:
        model = distributed.convert_sync_batchnorm(model, device.type)
    model.to(device)
    raw_model = model
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=args.lr_factor,
                                                           patience=args.lr_patience)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    stopper = EarlyStopping(mode, args.patience, args.min_delta)
    start_epoch, prior = 1, {"train_samples": 0, "train_seconds": 0.0, "wall_s": 0.0, "best_metrics": None}
    if resume_state is not None:
        raw_model.load_state_dict(resume_state["model_state"])
        r = resume_state["resume"]
        optimizer.load_state_dict(r["optimizer"])
        scheduler.load_state_dict(r["scheduler"])
        if scaler is not None and r.get("scaler"):
            scaler.load_state_dict(r["scaler"])
        stopper.load_state_dict(r["early_stopping"])
        stopper.patience, stopper.min_delta = args.patience, args.min_delta
        start_epoch = r["epoch"] + 1
        prior = r["totals"]
    if args.compile:
        model = torch.compile(model, backend=args.compile_backend)
    if ctx.enabled:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    n_params = sum(p.numel() for p in raw_model.parameters())
    per_rank = args.batch / ctx.world
    config = {k: v for k, v in vars(args).items()}
    config.update({"resolved": {"device": str(device), "amp": amp, "monitor": monitor, "mode": mode,
                                "world_size": ctx.world, "global_batch": args.batch,
                                "data_shape": list(data["shape"]), "n_classes": task.n_classes,
                                "n_params": n_params, "split": data["split"], "preprocess": preprocess_spec},
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
        if resume_state is None:
            runs.write_json(os.path.join(args.run_dir, "config.json"), config)
        else:
            runs.truncate_jsonl(metrics_path, start_epoch - 1)
        split = data["split"]
        log(f"data: {args.x} {tuple(data['shape'])} -> {task.n_classes} classes | "
            f"split {split['method']}: train {split['train']['windows']} / val {split['val']['windows']}"
            + (f" | groups {split['train']['groups']} / {split['val']['groups']}" if "groups" in split["val"] else "")
            + f" | classes train {split['train']['class_counts']} val {split['val']['class_counts']}"
            + (f" | test {split['test']['windows']}" if "test" in split else ""))
        log(f"model: {args.model} ({n_params:,} parameters) on {device} | amp {amp} | "
            f"global batch {args.batch}" + (f" = {ctx.world} processes x ~{per_rank:g}" if ctx.world > 1 else "")
            + f" | preprocess: {preprocess.describe(preprocess_spec)}")
        log(f"run dir: {args.run_dir}" + (f" (resuming after epoch {start_epoch - 1})" if resume_state else ""))

    example_shape = [1, c, f, t]
    totals = dict(prior)
    status = "completed"
    epoch = start_epoch - 1
    for epoch in range(start_epoch, args.epochs + 1):
        where["epoch"] = epoch
        torch.manual_seed(epoch_seed(args.seed, epoch, ctx.rank))
        batches, sizes = epoch_batches(len(train_set), args.batch, args.seed, epoch, shuffle=True,
                                       rank=ctx.rank, world=ctx.world)
        limit = limit_batches(args.limit_train_batches, len(batches))
        batches, sizes = batches[:limit], sizes[:limit]
        progress = make_progress(main, len(batches), f"epoch {epoch}")
        stats = train_one_epoch(model, task, train_set, batches, sizes, optimizer, scaler, device=device, amp=amp,
                                preprocess_spec=preprocess_spec, clip=args.clip, accum=args.accum, ctx=ctx,
                                workers=args.workers, progress=progress)
        if progress is not None:
            progress.close()
        val = evaluate(model, task, val_set, args.batch, device=device, amp=amp,
                       preprocess_spec=preprocess_spec, ctx=ctx, workers=args.workers)
        monitored = val["loss"] if monitor == "val_loss" else val[monitor[len("val_"):]]
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(monitored)
        is_best = stopper.update(monitored, epoch)
        totals["train_samples"] += stats["samples"]
        totals["train_seconds"] += stats["seconds"]
        row = {"epoch": epoch, "train_loss": stats["train_loss"], "train_acc": stats["train_acc"],
               "val_loss": val["loss"], "val_acc": val["acc"], "val_f1": val["f1"],
               "val_balanced_acc": val["balanced_acc"], "val_auroc": val["auroc"], "lr": lr,
               "train_windows": stats["samples"],
               "seconds": round(stats["seconds"], 4)}
        if is_best:
            totals["best_metrics"] = val
        if main:
            runs.append_jsonl(metrics_path, row)
            payload = checkpoint.model_payload(raw_model, task, example_shape, preprocess_spec, epoch,
                                               _plain(val), data["class_names"], data["channels"])
            if is_best:
                checkpoint.atomic_save(payload, args.save)
            totals["wall_s"] = prior["wall_s"] + (time.time() - wall_start)
            payload["resume"] = {
                "epoch": epoch, "args": _plain(vars(args)),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "early_stopping": stopper.state_dict(), "totals": _plain(totals)}
            checkpoint.atomic_save(payload, os.path.join(args.run_dir, "last.pt"))
            where["saved"] = epoch
            # printed once the epoch is saved: a run killed after this line resumes after this epoch
            log(f"[epoch {epoch:03d}] train: loss={stats['train_loss']:.4f} acc={stats['train_acc']:.4f} | "
                f"val: loss={val['loss']:.4f} acc={val['acc']:.4f} f1={val['f1']:.4f} | lr={lr:.2e}"
                + (" *" if is_best else ""))
        if stopper.should_stop:
            status = "early_stopped"
            log(f"early stopping: {monitor} has not improved for {stopper.patience} epochs "
                f"(best {stopper.best:.4f} at epoch {stopper.best_epoch})")
            break

    test = None
    if data["test"] is not None:    # the best checkpoint, once, on the held-out test set
        distributed.barrier(ctx)     # rank 0 has written --save
        raw_model.load_state_dict(checkpoint.load(args.save)["model_state"])
        Xt, yt = data["test"]
        test = _plain(evaluate(raw_model, task, Windows(Xt, yt, np.arange(len(yt))), args.batch, device=device,
                               amp=amp, preprocess_spec=preprocess_spec, ctx=ctx, workers=args.workers))
        log(f"test ({args.x_test}, best epoch {stopper.best_epoch}): loss={test['loss']:.4f} acc={test['acc']:.4f} "
            f"f1={test['f1']:.4f} balanced_acc={test['balanced_acc']:.4f}")
    summary = {
        "monitor": monitor, "mode": mode, "best": stopper.best, "best_epoch": stopper.best_epoch,
        "best_metrics": _plain(totals["best_metrics"]), "epochs_run": epoch, "status": status,
        "checkpoint": os.path.abspath(args.save), "run_dir": os.path.abspath(args.run_dir or "."),
        "wall_s": round(prior["wall_s"] + (time.time() - wall_start), 3),
        "train_samples_per_s": round(totals["train_samples"] / max(totals["train_seconds"], 1e-9), 2),
        "world_size": ctx.world, "global_batch": args.batch, "split": data["split"],
    }
    if test is not None:
        summary["test"] = test
    if main:
        runs.write_json(os.path.join(args.run_dir, "summary.json"), summary)
        log(f"best {monitor}={stopper.best:.4f} at epoch {stopper.best_epoch} -> {args.save} | "
            f"{summary['train_samples_per_s']:.0f} train samples/s | {summary['wall_s']:.1f}s")
    return summary


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


def _plain(obj):
    """Convert numpy scalars etc. to plain Python for JSON and weights_only checkpoints."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj
