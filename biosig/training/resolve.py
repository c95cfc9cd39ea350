"""A run's options, resolved once: resolve() turns train.py's parsed flags into a frozen RunConfig.

What resolve does, in this order (the order of the one-line errors a user sees):
  paths    every file flag made absolute (a --y naming a parquet label column stays a name)
  resume   --resume: last.pt's options, the run-defining ones given again checked against them
  init     --init: the checkpoint's model and model options (without --model), its preprocessing
           (without --standardize/--normalize)
  recipe   the model (the default, the guide's form, or --model) and its recipe, merged once
  checks   required inputs, --init/--freeze-encoder, --augment, the task's and the model's flags,
           --monitor, --warmup, --tracker; the device, mixed precision and the thread pool
Nothing writes to a RunConfig afterwards. Where a later phase must change a value (--model auto
picks the model after cross-validation; --batch is capped at the training windows; the default
run directory), it builds a new one with RunConfig.with_flags, in run.settle only.
"""
import dataclasses
import os
from dataclasses import dataclass

from .. import named, tasks, threads
from ..data import parquet
from ..device import resolve_amp, resolve_device
from ..errors import UserError
from ..models import MODELS
from ..signals import contract as signalspec
from ..tasks import TASKS
from . import init, options, trackers
from .recipe import with_recipe
from .resume import finished_message, read_resume


class Flags:
    """train.py's options by their argparse dests (flags.lr, flags.model_kwargs), read-only, in the
    parser's order. flags.with_(lr=0.1) is a new Flags; as_dict() is what config.json records."""
    __slots__ = ("_values",)

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError(f"a run's options are resolved once: build new ones with .with_({name}=...)")

    def __delattr__(self, name):
        raise AttributeError("a run's options are resolved once")

    def __eq__(self, other):
        return isinstance(other, Flags) and self._values == other._values

    def __repr__(self):
        return f"Flags({self._values!r})"

    def with_(self, **changes):
        return Flags({**self._values, **changes})

    def as_dict(self):
        return dict(self._values)


@dataclass(frozen=True)
class RunConfig:
    """A training run, resolved. flags: train.py's options (config.json's top level, last.pt's
    resume args); explicit: the flags the command line gave; why_model: the log's reason for the
    model; monitor, mode: what the best checkpoint, the schedule and early stopping watch;
    device, amp, threads: where it runs (threads: the log's text); resumed: last.pt's contents
    (--resume) or None; init: the --init checkpoint or None; done: for a resumed run with nothing
    left to train, the line to print instead."""
    flags: Flags
    explicit: frozenset
    why_model: str
    monitor: str
    mode: str
    device: object
    amp: str
    threads: str
    resumed: dict = None
    init: dict = None
    done: str = None

    def with_flags(self, **changes):
        return dataclasses.replace(self, flags=self.flags.with_(**changes))


def resolve(args, explicit=frozenset()):
    """train.py's parsed flags (an argparse Namespace) and the names given on its command line ->
    RunConfig, or a one-line UserError before anything is written."""
    flags = absolute_paths(Flags(vars(args)))
    resumed = init_ckpt = None
    if flags.resume:
        resumed, flags = read_resume(flags, explicit)
    if flags.init and resumed is None:
        init_ckpt, flags = init.read_init(flags, explicit)
    flags, why_model = with_recipe(flags, explicit) if resumed is None else (flags, "the run being resumed")
    if init_ckpt is not None and "model" not in explicit:
        why_model = f"the model of --init {flags.init}"
    check_inputs(flags)
    if init_ckpt is not None:
        if flags.model == "auto":
            raise UserError("--init loads into one model: give --model NAME, or leave --model out to take the "
                            f"checkpoint's ({init_ckpt['config'].get('name')})")
        flags = init.take_preprocessing(flags, explicit, init_ckpt)
    check_model_and_task(flags)
    device = resolve_device(flags.device)
    amp = resolve_amp(flags.amp, device)
    threads_line = threads.apply(flags.threads)      # before any math: the pool is sized once
    monitor, mode = resolve_monitor(flags)
    trackers.check_installed(flags.tracker)
    if flags.warmup and flags.schedule != "cosine":
        raise UserError(f"--warmup {flags.warmup} goes with --schedule cosine (this run's schedule is "
                        f"{flags.schedule})")
    done = finished_message(flags, resumed, mode) if resumed is not None else None
    # (a run killed after its last epoch but before summary.json goes on: zero epochs, then the summary)
    if done and not os.path.exists(os.path.join(os.path.dirname(flags.resume), "summary.json")):
        done = None
    if not done:
        flags = channel_columns(flags)
    return RunConfig(flags, frozenset(explicit), why_model, monitor, mode, device, amp, threads_line,
                     resumed, init_ckpt, done)


def absolute_paths(flags):
    """Every file flag as an absolute path: a run resumes, and a sweep trial runs, from any directory."""
    changes = {}
    for key in options.dests(options.PATH):
        value = getattr(flags, key, None)
        if value:
            changes[key] = named.each(lambda v: _absolute(key, v), value)
    return flags.with_(**changes)


def _absolute(key, value):
    # a y that is a parquet label-column name, not a file, stays as it is
    return value if key.startswith("y") and parquet.names_a_column(value) else os.path.abspath(value)


def member_tasks(flags):
    """{target: task name} of a run: several targets' (--y NAME=...), or {None: --task}."""
    return tasks.member_tasks(flags.task, flags.y, flags.loss_weight, TASKS) or {None: flags.task}


def check_inputs(flags):
    """--x, --y (unless the task learns from windows alone, or parquet holds them) and --save;
    --freeze-encoder only with --init."""
    members = member_tasks(flags)
    unlabelled = all(TASKS[t].target_kind is None for t in members.values())
    if not (flags.x and flags.save and (flags.y or parquet.is_parquet(named.first(flags.x)) or unlabelled)):
        raise UserError(("--x and --save are required" if unlabelled else
                         "--x, --y and --save are required") + " (unless resuming with --resume RUN_DIR/last.pt)")
    if flags.freeze_encoder and not flags.init:
        raise UserError("--freeze-encoder freezes the weights loaded by --init; give --init CHECKPOINT")


def check_model_and_task(flags):
    """--augment the task refuses, another task's flag, a model the task cannot train: one line."""
    members = member_tasks(flags)
    for task in members.values():
        task_cls = TASKS[task]
        for name in flags.augment or ():
            if name in task_cls.refused_augments:
                raise UserError(f"--augment {name} does not go with --task {task}: {task_cls.refused_augments[name]}")
    if list(members) == [None]:
        options.task_values(flags)       # another task's flag (--loss with classification): one line, now
    else:
        check_task_flags(flags, set(members.values()))
    model = MODELS.get(flags.model)
    for task in set(members.values()) if flags.model != "auto" else ():
        # a fusion model is as per-frame as its encoders, which the model's own check does not know
        problem = TASKS[task].model_problem(model)
        if problem:
            raise UserError(problem)
    if isinstance(flags.x, dict) and flags.model != "auto" and not getattr(model, "multi_input", False):
        fusion = sorted(n for n, m in MODELS.items() if getattr(m, "multi_input", False))
        raise UserError(f"--model {flags.model} takes one input; several (--x {', '.join(flags.x)}) need a fusion "
                        f"model: --model {' or '.join(fusion)} (with --encoder {flags.model})")
    if not isinstance(flags.x, dict) and getattr(model, "multi_input", False):
        raise UserError(f"--model {flags.model} fuses several inputs: give them by name, --x NAME=PATH for each")


def check_task_flags(flags, kinds):
    """Several targets: every task flag given belongs to one of their tasks."""
    for task in TASKS.values():
        for opt in task.options:
            if opt.flag and task.name not in kinds and getattr(flags, opt.key, None) is not None \
                    and not any(opt.key in {o.key for o in TASKS[k].options} for k in kinds):
                raise UserError(f"{opt.flag} is an option of --task {task.name}, which no target has "
                                f"({', '.join(sorted(kinds))})")


def resolve_monitor(flags):
    """-> (monitor, mode): --monitor or the task's; without validation, the training loss. Several
    targets: val_loss (their weighted total) or NAME:METRIC (act:val_f1)."""
    members = member_tasks(flags)
    if list(members) == [None]:
        task_monitors, default, what = TASKS[flags.task].monitors, TASKS[flags.task].default_monitor, \
            f"--task {flags.task}"
    else:
        task_monitors = {"val_loss": "min", **{f"{n}:{m}": mode for n, t in members.items()
                                               for m, mode in TASKS[t].monitors.items()}}
        default, what = "val_loss", "these targets"
    monitor = flags.monitor or default
    if monitor not in task_monitors:
        raise UserError(f"--monitor {monitor}: {what} monitor {', '.join(task_monitors)}"
                        if what != f"--task {flags.task}" else
                        f"--monitor {monitor}: --task {flags.task} monitors {', '.join(task_monitors)}")
    mode = task_monitors[monitor]
    if flags.val_split == 0 and not flags.x_val and flags.fold is None:
        # no validation: the last epoch is the model; a plateau schedule watches the training loss
        for flag, given in (("--monitor", flags.monitor), ("--patience", flags.patience)):
            if given:
                raise UserError(f"{flag} needs validation windows, and --val-split 0 leaves none (give --x-val, "
                                f"or a --val-split above 0)")
        monitor, mode = "train_loss", "min"
    return monitor, mode


def channel_columns(flags):
    """A parquet --x of one column per named channel (its signal.json names them), without
    --signal-cols: those columns."""
    if not isinstance(flags.x, dict) and parquet.is_parquet(flags.x) and not flags.signal_cols:
        return flags.with_(signal_cols=",".join(signalspec.read(flags.x).get("channels") or []) or None)
    return flags


def planned_options(parsed, explicit):
    """A sweep trial's options as train.py will resolve them before its data is read: the model (the
    default, the guide's form, --model) with its recipe, and its model options checked (a one-line
    UserError). parsed: train.py's parsed flags. -> Flags."""
    flags, _ = with_recipe(Flags(vars(parsed)), explicit)
    if flags.model != "auto":
        options.model_options(flags)
    return flags
