"""A run's data: the training windows read and checked, the task built from their targets,
and the split into training, validation and test windows (prepare_data)."""
import numpy as np

from .. import named
from ..data import ledger
from . import options, several
from ..signals import contract as signalspec
from ..data import fold_split, load_groups, split_indices
from ..data import parquet
from ..errors import UserError, warn
from ..tasks import TASKS, MultiTask, member_tasks


class Several:
    """What the reader needs of several targets' tasks: each target's kind."""

    def __init__(self, members):
        self.members = members
        self.target_kind = {n: TASKS[t].target_kind for n, t in members.items()}

    def from_targets(self, flags, targets):
        """The MultiTask: each member from its own targets, with the task flags its task takes."""
        tasks = {}
        for name, kind in self.members.items():
            values = options.task_values(flags, kind, quiet=True)
            tasks[name] = TASKS[kind].from_targets(values, [(t[name], w[name] if isinstance(w, dict) else w)
                                                            for t, w in targets])
        weights = {n: float((flags.loss_weight or {}).get(n, 1.0)) for n in tasks}
        return MultiTask(tasks, weights)


def task_kind(flags):
    """The run's task class, or Several for several targets."""
    members = member_tasks(flags.task, flags.y, flags.loss_weight, TASKS)
    return Several(members) if members else TASKS[flags.task]


def _read(x, y, flags, task_cls):
    """The windows and targets with this run's parquet options, --load and the task's target kind."""
    return several.read(x, y, flags, task_cls.target_kind)


def prepare_data(flags):
    """Open and check the training data (and explicit validation/test data), build the task, split,
    as the run's resolved flags (biosig.training.resolve.Flags) say; reads, never writes, them.

    Returns a dict: X, y, task, train_idx, val (X, y, idx), test (X, y) or None,
    shape (N, C, F, T), channels (names or None), signal (biosig.signalspec: the input's
    sampling rate, channels, units, band-power frames, as far as known), split (for summary.json)."""
    task_cls = task_kind(flags)
    if task_cls.target_kind is None and (flags.y or flags.y_val or flags.y_test):
        warn(f"--task {flags.task} learns from the windows alone: --y, --y-val and --y-test are not read")
    X, y, groups, where = _read(flags.x, flags.y, flags, task_cls)
    extra = read_held_out(flags, task_cls, X)
    targets = [(y, where)] + [(e[1], e[2]) for e in extra.values()]
    task = (task_cls.from_targets(flags, targets) if isinstance(task_cls, Several)
            else task_cls.from_targets(options.task_values(flags), targets))
    if flags.groups:
        groups = load_groups(flags.groups, named.rows(X))
    check_folds(flags, extra)
    train_idx, val_idx, val, validate = split_windows(flags, task, X, y, groups, extra)
    task.fit(named.take(y, train_idx), where)
    split, test = split_record(flags, task, X, y, groups, extra, train_idx, val, validate)
    signal = check_signal(flags, X)
    shape = named.each(lambda a: tuple(a.shape), X)
    return {"X": X, "y": y, "groups": groups, "task": task, "shape": shape, "train_idx": train_idx,
            "channels": None if isinstance(X, dict) else signal.get("channels"), "signal": signal, "val": val,
            "test": test, "split": split, "ledger": ledger.make(groups, train_idx, val_idx)}


def read_held_out(flags, task_cls, X):
    """--elec/--bands against X, and --x-val/--x-test read and checked against X's (C, F)
    -> {"val"/"test": (windows, targets, source, indices)}."""
    for flag, given, axis in (("--elec", flags.elec, 1), ("--bands", flags.bands, 2)):
        if given is not None and isinstance(X, dict):
            raise UserError(f"{flag}: several inputs each have their own; their files say them")
        if given is not None and given != X.shape[axis]:
            raise UserError(f"{flags.x}: {flag} {given} contradicts the data, which has {X.shape[axis]} "
                            f"(X shape {tuple(X.shape)} is (N, C, F, T))")
    shapes = named.each(lambda a: tuple(a.shape), X)
    extra = {}
    for name, xp, yp in (("val", flags.x_val, flags.y_val), ("test", flags.x_test, flags.y_test)):
        one = named.first(xp) if xp else None
        if bool(xp) != bool(yp) and not (one and parquet.is_parquet(one)) and task_cls.target_kind is not None:
            raise UserError(f"--x-{name} and --y-{name} go together")
        if xp:
            Xe, ye, _, where_e = _read(xp, yp, flags, task_cls)
            several.check_like(xp, Xe, shapes, f"--x-{name}")
            extra[name] = (Xe, ye, where_e, np.arange(named.rows(Xe)))     # windows, targets, source, indices
    return extra


def check_folds(flags, extra):
    """--fold-seed, --fold and --test-fold need --folds; held-out windows come one way."""
    if flags.folds is None and flags.fold_seed:
        raise UserError("--fold-seed seeds the --folds assignment; give --folds K")
    if flags.folds is None and (flags.fold is not None or flags.test_fold is not None):
        raise UserError(f"{'--fold' if flags.fold is not None else '--test-fold'} needs --folds K (the number of folds)")
    for flag, name in (("--x-val", "val"), ("--x-test", "test")):
        if flags.folds and name in extra and (flags.test_fold if name == "test" else flags.fold) is not None:
            raise UserError(f"{flag} and --folds: give the {'validation' if name == 'val' else 'test'} windows "
                            f"one way (a file, or a fold of --x)")


def split_windows(flags, task, X, y, groups, extra):
    """Training and validation windows: folds of X, --x-val, none (--val-split 0), or a --val-split
    of X. A test fold joins `extra` as "test". -> (train_idx, val_idx or None, val (X, y, idx) or
    None, whether the run validates)."""
    n = named.rows(X)
    validate = "val" in extra or flags.val_split > 0 or flags.fold is not None
    if flags.split == "group" and groups is None and "val" not in extra:
        raise UserError("--split group needs --groups groups.npy (or --group-col with parquet): "
                        "one group id, e.g. subject, per window")
    val_idx = None
    if flags.folds:                      # cross-validation: held-out folds of X
        train_idx, val_idx, test_idx = fold_split(task.strata(y), n, flags.folds, flags.fold, flags.test_fold,
                                                  flags.fold_seed, groups, flags.split, flags.val_split, flags.seed,
                                                  where=named.first(flags.x))
        validate = val_idx is not None or "val" in extra
        if "val" in extra:
            val = (extra["val"][0], extra["val"][1], extra["val"][3])
        else:
            val = (X, y, val_idx) if val_idx is not None else None
        if test_idx is not None:
            extra["test"] = (X, y, flags.x, test_idx)
    elif "val" in extra:
        train_idx = np.arange(n)
        val = (extra["val"][0], extra["val"][1], extra["val"][3])
    elif not validate:                  # --val-split 0: every window trains
        train_idx, val = np.arange(n), None
    else:
        train_idx, val_idx = split_indices(task.strata(y), flags.val_split, flags.seed, flags.split, groups,
                                           where=named.first(flags.x), n=n)
        val = (X, y, val_idx)
    return train_idx, val_idx, val, validate


def split_record(flags, task, X, y, groups, extra, train_idx, val, validate):
    """summary.json's "split" (windows, targets and groups on each side) and the test windows
    (X, y, idx) or None."""
    def describe(targets, idx, grp, list_groups=False):
        d = {"windows": int(len(idx)), **task.describe_targets(named.take(targets, idx))}
        if grp is not None:
            ids = np.unique(grp[idx])
            d["groups"] = int(len(ids))
            if list_groups:     # which subjects/recordings were held out, to report or reuse
                d["group_ids"] = ids.tolist()
        return d

    method = "random" if flags.split == "stratified" and task.strata(y) is None else flags.split
    split = {"method": "explicit" if "val" in extra else method if validate else "none",
             "train": describe(y, train_idx, groups),
             "val": describe(val[1], val[2], groups if "val" not in extra else None, list_groups=True)
             if validate else None}
    if flags.folds:
        split["folds"] = {"k": flags.folds, "fold": flags.fold, "test_fold": flags.test_fold, "seed": flags.fold_seed,
                          "by": method}
    if "val" in extra:
        split["val_source"] = flags.x_val
    test = None
    if "test" in extra:
        Xt, yt, _, test_idx = extra["test"]
        split["test"] = describe(yt, test_idx, groups if Xt is X else None, list_groups=True)
        test = (Xt, yt, test_idx)
    return split, test


def check_signal(flags, X):
    """The training windows' signal (signalspec.given) -> its description; tiny values warned of,
    the shape checked against it, and --x-val's and --x-test's signal against it. Several inputs:
    {name: its signal}, their durations checked (several.signals)."""
    if isinstance(X, dict):
        if flags.channel_names:
            raise UserError("--channel-names: several inputs each have their own; give them in each input's "
                            "NAME.signal.json")
        return several.signals(flags.x, flags.fs, named.each(lambda a: tuple(a.shape), X))
    columns = parquet.parse_columns(flags.signal_cols) if flags.signal_cols and parquet.is_parquet(flags.x) else None
    signal = signalspec.given(flags.x, flags.fs, flags.channel_names, columns)
    if not (flags.standardize or flags.normalize):       # volts straight from MNE train at chance, silently
        scale = float(np.asarray(X[:min(X.shape[0], 64)], dtype=np.float64).std())
        if 0 < scale < 1e-3:
            warn(f"{flags.x}: its values are tiny (std {scale:.1e}{'; volts?' if signal.get('units') == 'V' else ''}): "
                 f"add --standardize (or scale X) or the model may not learn")
    signalspec.check_shape(signal, X.shape, flags.x)
    for flag, path in (("--x-val", flags.x_val), ("--x-test", flags.x_test)):
        other = signalspec.read(path)
        if other and {k: other.get(k) for k in signalspec.KEYS} != {k: signal.get(k) for k in signalspec.KEYS}:
            raise UserError(f"{path}: {flag}'s signal ({signalspec.describe(other)}) is not the training windows' "
                            f"({signalspec.describe(signal)})")
    return signal
