"""train.py's options in one place: the parser, and what kind of option each one is.

Every option has kinds (path, run, trial: their meaning is in biosig/declare.py) that the rest
of the package reads from here (dests(PATH), KINDS), never from a hand-kept list of its own.
Model and task options are declared by the models and tasks themselves (an `options` tuple of
biosig.declare.Option), so registering a model or a task adds its flags.
"""
import argparse
import copy
import difflib
import os
import sys

from .augment import AUGMENTS
from ..errors import (ArgumentParser, HelpFormatter, UserError, nonnegative_float, nonnegative_int, number,
                      positive_float, positive_int)
from ..declare import PATH, RUN, TRIAL, declared_values, own_values
from ..threads import add_threads_flag


KINDS = {}     # train.py's argparse dest -> frozenset of kinds, filled by train_parser()


def _add(group, *flags, kinds=None, **kwargs):
    """group.add_argument, recording the option's kinds (train.py's options only: kinds=None
    for the flags other scripts declare)."""
    action = group.add_argument(*flags, **kwargs)
    if kinds is not None:
        KINDS[action.dest] = frozenset(kinds)
    return action


def dests(kind):
    """train.py's options (argparse dests) of one kind: options.dests(PATH) -> ('x', 'y', ...)."""
    if "x" not in KINDS:
        train_parser()
    return tuple(d for d, k in KINDS.items() if kind in k)


def add_source_flags(parser, kinds=None, group_col=True):
    """The parquet column flags that train.py, infer.py and biosig.convert share (declared once in
    biosig/data/flags.py), with their kinds recorded (train.py's)."""
    from ..data.flags import add_source_flags as source_flags
    for action in source_flags(parser, group_col):
        if kinds is not None:
            KINDS[action.dest] = frozenset(kinds)


def batch_limit(text):
    """--limit-train-batches: a fraction in (0, 1) or a whole number of batches >= 1."""
    value = number(float, 0, low_open=True)(text)
    if value >= 1 and value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: give a fraction below 1 or a whole number of batches")
    return value


def model_kwarg(text):
    """--model-kwargs name=value: split here (also "a=1 b=2" as one word, as a sweep grid value
    gives it), checked against the model's options by the run. -> [[name, value], ...]"""
    pairs = []
    for word in text.split():
        name, eq, value = word.partition("=")
        if not eq or not name:
            raise argparse.ArgumentTypeError(f"{word!r}: expected name=value, e.g. depth_mult=2")
        pairs.append([name.replace("-", "_"), value])
    if not pairs:
        raise argparse.ArgumentTypeError("expected name=value, e.g. depth_mult=2")
    return pairs


def _named(parser, group, flag, kinds, **kwargs):
    """An option that takes VALUE or NAME=VALUE (errors.ArgumentParser.add_named), with its kinds."""
    action = parser.add_named(group, flag, **kwargs)
    KINDS[action.dest] = frozenset(kinds)
    return action


def train_parser():
    """train.py's ArgumentParser, with the registered models' and tasks' options."""
    from ..models import DEFAULT_MODEL, GUIDE_MODEL, MODELS
    from ..tasks import TASKS
    prog = "biosig-train" if os.path.basename(sys.argv[0] or "") == "biosig-train" else "train.py"
    p = ArgumentParser(prog=prog, description="Train a biosig model on (N, C, F, T) windows.",
                       formatter_class=HelpFormatter)
    P, R = (PATH, RUN), (RUN,)
    d = p.add_argument_group("data")
    _named(p, d, "--x", kinds=P, is_path=True, metavar="[NAME=]X.npy", help="X.npy, float array (N, C, F, T), opened "
           "memory-mapped; or windows.parquet (a file or a directory of them, one row per window, see "
           "docs/parquet.md). Several signals at their own rates: --x NAME=PATH for each (docs/fusion.md)")
    _named(p, d, "--y", kinds=P, is_path=True, metavar="[NAME=]y.npy", help="y.npy, targets: class labels (N,) in "
           "[0, K-1]; regression (N,) or (N, D) floats; segmentation (N, T) labels per frame; none for --task "
           "pretrain. With parquet --x, the label column (default: --label-col). Several targets: --y NAME=PATH "
           "for each, with --task NAME=TASK")
    _named(p, d, "--x-val", kinds=P, is_path=True, help="explicit validation windows (.npy or parquet); overrides "
           "--val-split")
    _named(p, d, "--y-val", kinds=P, is_path=True, help="targets of --x-val (.npy, or a column name)")
    _named(p, d, "--x-test", kinds=(PATH,), is_path=True, help="test windows: the best checkpoint is evaluated on "
           "them once, at the end (summary.json 'test')")
    _named(p, d, "--y-test", kinds=(PATH,), is_path=True, help="targets of --x-test (.npy, or a column name)")
    add_source_flags(d, kinds=R)
    _add(d, "--elec", type=positive_int, kinds=R, help="channels/electrodes C (default: from X; checked when given)")
    _add(d, "--bands", type=positive_int, kinds=R, help="bands/feature rows F (default: from X; checked when given)")
    _add(d, "--val-split", type=number(float, 0, 1, high_open=True), default=0.2, kinds=R,
         help="fraction of windows held out for validation; 0: none, train on every window and save the "
         "last epoch (small data sets, once a recipe is chosen)")
    _add(d, "--split", choices=["stratified", "random", "group"], default="stratified", kinds=R,
         help="how to pick validation windows: stratified keeps class proportions; group keeps each group "
         "(--groups / --group-col, e.g. subject) on one side only")
    _add(d, "--groups", kinds=P, help="groups.npy (N,): subject/recording id per window, for --split group "
         "(recorded in the checkpoint, so that infer.py --groups can tell windows of groups it trained on)")
    _add(d, "--folds", type=number(int, 2), kinds=R, help="K-fold cross-validation: split the windows into K folds "
         "(stratified by class; whole groups with --split group, K = the number of groups being leave-one-"
         "subject-out) and hold out --fold and/or --test-fold")
    _add(d, "--fold", type=nonnegative_int, kinds=R, help="with --folds: the fold that validates (0..K-1)")
    _add(d, "--test-fold", type=nonnegative_int, kinds=R, help="with --folds: the fold held out as test data, "
         "scored once at the end; without --fold, --val-split of the rest validates")
    _add(d, "--fold-seed", type=nonnegative_int, default=0, kinds=R,
         help="seed of the --folds assignment (not --seed: every seed sees the same folds)")
    _named(p, d, "--fs", kind=positive_float, kinds=R, nargs="+", metavar="[NAME=]HZ", help="sampling rate of the recordings "
           "in Hz (default: from X.signal.json beside --x, if any); stored in the checkpoint, which infer.py then "
           "checks. Several inputs: NAME=HZ for each (--fs ppg=64 acc=32)")
    _add(d, "--channel-names", kinds=R, help="the C channels' names, comma-separated (default: X.signal.json, or "
         "parquet --signal-cols); infer.py reorders a recording's channels by them and refuses one without them")
    _add(d, "--standardize", action="store_true", kinds=R, help="per-(channel, band) mean/std from the training "
         "split only, stored in the checkpoint and applied by infer.py")
    _add(d, "--normalize", action="store_true", kinds=R, help="per-window z-score over (F, T) per electrode "
         "(recorded in the checkpoint; infer.py repeats it)")
    _add(d, "--load", kinds=(), choices=["auto", "mmap", "ram"], default="auto",
         help="read X from disk per batch (mmap), whole into RAM, or ram only if it fits easily")
    _add(d, "--workers", kinds=(), type=nonnegative_int, default=0, help="processes reading batches (0: the main process)")

    t = p.add_argument_group("task")
    _named(p, t, "--task", default="classification", choices=sorted(TASKS), kinds=R, metavar="[NAME=]TASK",
           help=f"what is learned: {', '.join(sorted(TASKS))}; several targets: NAME=TASK for each --y NAME=...")
    _named(p, t, "--loss-weight", kind=nonnegative_float, kinds=R, metavar="NAME=W",
           help="several targets: each one's weight in the summed loss (default 1 each), e.g. hr=1,act=0.5")
    for task in TASKS.values():
        _add_declared(t, task.options, task.name)

    _add(t, "--init", kinds=P, help="start from this checkpoint's matching weights (same name and shape), e.g. "
         "a --task pretrain run's encoder; without --model, its model and model options")
    _add(t, "--freeze-encoder", type=positive_int, nargs="?", const=True, metavar="N", kinds=R,
         help="with --init: keep the loaded weights fixed for the first N epochs (no N: for every epoch, "
         "linear probing); the new ones (the head) train")

    m = p.add_argument_group("model")
    _add(m, "--model", choices=["auto", *sorted(MODELS), "help"], kinds=R,
         help=f"architecture, trained with its own recipe (see --model help) for the options not given; auto: "
         f"the better of several by cross-validation on the training windows. Default: {DEFAULT_MODEL}, or "
         f"{GUIDE_MODEL} for the guide's command form (--elec, --bands or an {GUIDE_MODEL} flag)")
    _add(m, "--model-kwargs", type=model_kwarg, nargs="+", metavar="NAME=VALUE", kinds=R,
         help="the model's other constructor options, e.g. depth_mult=2 kernel_time=9 (checked against the model)")
    _add(m, "--drop", type=number(float, 0, 1, high_open=True), default=0.1, kinds=R,
         help="dropout probability (every model)")
    for model in MODELS.values():
        _add_declared(m, model.options, model.name)

    o = p.add_argument_group("optimization")
    _add(o, "--epochs", kinds=(), type=positive_int, default=30,
         help="epochs to train (a resumed run: the total, so --epochs 50 extends a 30-epoch run)")
    _add(o, "--batch", type=positive_int, default=64, kinds=R,
         help="global batch size (split across torchrun processes)")
    _add(o, "--accum", type=positive_int, default=1, kinds=R,
         help="gradient accumulation steps (effective batch = batch x accum)")
    _add(o, "--lr", type=positive_float, default=3e-4, kinds=R, help="AdamW learning rate")
    _add(o, "--wd", type=nonnegative_float, default=1e-4, kinds=R, help="AdamW weight decay")
    _add(o, "--clip", type=nonnegative_float, default=1.0, kinds=R, help="gradient-norm clipping (0: off)")
    _add(o, "--amp", choices=["auto", "off", "bf16", "fp16"], default="auto", kinds=R,
         help="mixed precision; auto = fp16 + GradScaler on CUDA, off elsewhere")
    monitors = sorted({"val_loss", *(m for task in TASKS.values() for m in task.monitors)})
    _add(o, "--monitor", kinds=R, metavar="[NAME:]METRIC",
         help=f"metric for best checkpoint, LR schedule and early stopping (default: the task's, val_loss): "
         f"{', '.join(monitors)}; several targets: val_loss (the weighted total) or NAME:METRIC, e.g. act:val_f1")
    _add(o, "--schedule", choices=["plateau", "cosine"], default="plateau", kinds=R,
         help="learning-rate schedule: plateau (ReduceLROnPlateau on --monitor) or cosine (with --warmup)")
    _add(o, "--warmup", type=nonnegative_int, default=0, kinds=R,
         help="--schedule cosine: epochs of linear warm-up to --lr")
    _add(o, "--lr-patience", type=nonnegative_int, default=3, kinds=R, help="ReduceLROnPlateau patience (epochs)")
    _add(o, "--lr-factor", type=number(float, 0, 1, low_open=True, high_open=True), default=0.5, kinds=R,
         help="ReduceLROnPlateau factor")
    _add(o, "--augment", nargs="+", choices=AUGMENTS, default=[], metavar="NAME", kinds=R,
         help=f"augment training batches (never validation or inference): {', '.join(AUGMENTS)} "
         "(see biosig/training/augment.py for each one's strength)")
    _add(o, "--patience", kinds=(), type=nonnegative_int, default=0,
         help="early stopping after this many epochs without improvement (0: off)")
    _add(o, "--min-delta", kinds=(), type=nonnegative_float, default=0.0, help="smallest change that counts as an improvement")
    _add(o, "--limit-train-batches", type=batch_limit, kinds=R,
         help="train on only this many batches per epoch (or this fraction if < 1), for quick runs")
    _add(o, "--seed", type=nonnegative_int, default=1337, kinds=R)
    _add(o, "--deterministic", action="store_true", kinds=R,
         help="deterministic algorithms (bitwise-repeatable on CPU)")

    r = p.add_argument_group("run")
    _add(r, "--save", kinds=(PATH, RUN, TRIAL), help="best checkpoint path (.pt), written atomically")
    _add(r, "--run-dir", kinds=(TRIAL,), help="directory for config.json, metrics.jsonl, summary.json, last.pt "
         "(default: runs/<date-time>, never an existing run)")
    _add(r, "--resume", kinds=(TRIAL,), help="continue the run whose RUN_DIR/last.pt this is")
    _add(r, "--device", kinds=(), choices=["auto", "cpu", "cuda", "mps"], default="auto")
    KINDS[add_threads_flag(r).dest] = frozenset()         # may change on resume, as --device may
    _add(r, "--compile", kinds=(), action="store_true", help="torch.compile the model")
    _add(r, "--compile-backend", kinds=(), default="inductor",
         help="torch.compile backend (aot_eager compiles fast on CPU; inductor is fastest on CUDA)")
    _add(r, "--sync-bn", action="store_true", kinds=R, help="BatchNorm statistics over all processes under torchrun")
    _add(r, "--no-report", kinds=(), action="store_true",
         help="do not write RUN_DIR/report.png and report.html at the end (learning curves, confusion matrix, ...; "
         "needs matplotlib); python -m biosig.report RUN_DIR writes them later")
    _add(r, "--tracker", kinds=(), action="append", choices=["mlflow", "tensorboard", "wandb"],
         help="also log the config, every epoch's metrics, the summary, the best checkpoint and the report to "
         "this experiment tracker (repeatable; offline by default, see docs/training.md)")
    return p


def _add_declared(group, options, owner):
    """Flags that a model or task declares (one flag may be shared by several models: it is
    declared once; its default is each model's own, so argparse's default stays None)."""
    for opt in options:
        if opt.flag is None:
            continue
        if any(opt.flag in a.option_strings for a in group._group_actions):     # another model's, already here
            continue
        _add(group, opt.flag, dest=opt.key, type=opt.type, kinds=opt.kinds, default=None,
             help=f"{opt.help} ({owner} default: {opt.default})" if opt.default is not None else opt.help)


def explicit_options(parser, argv):
    """Names of the options given on the command line (not left at their defaults)."""
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(quiet.parse_known_args(argv)[0]))


def to_argv(given):
    """{dest: value} (biosig.train's keyword arguments) -> train.py's argv: None and False leave an
    option out, True gives an on/off flag, a list (a dict for model_kwargs) several values. An
    unknown dest is one line, with the closest one."""
    actions = {a.dest: a for a in train_parser()._actions if a.dest != "help" and a.option_strings}
    argv = []
    for dest, value in given.items():
        action = actions.get(dest)
        if action is None:
            close = difflib.get_close_matches(dest, actions, n=1)
            raise UserError(f"train({dest}=...): not an option of train.py"
                            + (f" (did you mean {close[0]}?)" if close else ""))
        if value is None or value is False:
            continue
        flag = next(s for s in action.option_strings if s.startswith("--"))
        if value is True:
            argv.append(flag)
        elif isinstance(action, argparse._StoreTrueAction):
            raise UserError(f"train({dest}={value!r}): {flag} is on or off: give True or False")
        elif isinstance(action, argparse._AppendAction) and isinstance(value, dict):    # x={"ppg": ..., "acc": ...}
            argv += [f"{flag}={k}={_text(v)}" for k, v in value.items()]
        elif isinstance(action, argparse._AppendAction):
            argv += [f"{flag}={_text(item)}" for item in _listed(value)]
        elif action.nargs in ("+", "*"):
            if isinstance(value, dict):         # model_kwargs={"kernel": 9}
                value = [f"{k}={v}" for k, v in value.items()]
            argv += [flag, *(_text(item) for item in _listed(value))]
        else:
            argv.append(f"{flag}={_text(value)}")
    return argv


def _listed(value):
    return [value] if isinstance(value, (str, bytes, os.PathLike)) or not hasattr(value, "__iter__") else list(value)


def _text(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def model_options(args):
    """The chosen model's constructor options (declare.own_values): its flags, --model-kwargs, else
    its defaults."""
    from ..models import MODELS
    return own_values(MODELS, args.model, args, "model", args.model_kwargs)


def task_values(args, task=None, quiet=False):
    """The chosen task's option values (`task`: one of several targets' tasks); a flag that only
    another task has is one line (quiet: the flags it does not take are left to the others)."""
    from ..tasks import TASKS
    task = task or args.task
    if quiet:
        return declared_values(TASKS[task].options, args, owner=f"--task {task}")
    return own_values(TASKS, task, args, "task")
