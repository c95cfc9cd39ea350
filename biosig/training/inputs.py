"""A run's data: the training windows read and checked, the task built from their targets,
and the split into training, validation and test windows (prepare_data)."""
import numpy as np

from ..data import ledger
from . import options
from ..signals import contract as signalspec
from ..data import fold_split, load_groups, read_source, split_indices
from ..data import parquet
from ..errors import UserError, warn
from ..tasks import TASKS


def _read(x, y, flags, task_cls):
    """data.read_source with this run's parquet options, --load and the task's target kind."""
    return read_source(x, y, x_col=flags.x_col, signal_cols=flags.signal_cols, label_col=flags.label_col,
                       group_col=flags.group_col, load=flags.load, target_kind=task_cls.target_kind)


def prepare_data(flags):
    """Open and check the training data (and explicit validation/test data), build the task, split,
    as the run's resolved flags (biosig.training.resolve.Flags) say; reads, never writes, them.

    Returns a dict: X, y, task, train_idx, val (X, y, idx), test (X, y) or None,
    shape (N, C, F, T), channels (names or None), signal (biosig.signalspec: the input's
    sampling rate, channels, units, band-power frames, as far as known), split (for summary.json)."""
    task_cls = TASKS[flags.task]
    if task_cls.target_kind is None and (flags.y or flags.y_val or flags.y_test):
        warn(f"--task {flags.task} learns from the windows alone: --y, --y-val and --y-test are not read")
    X, y, groups, where = _read(flags.x, flags.y, flags, task_cls)
    extra = read_held_out(flags, task_cls, X)
    task = task_cls.from_targets(options.task_values(flags), [(y, where)] + [(e[1], e[2]) for e in extra.values()])
    if flags.groups:
        groups = load_groups(flags.groups, X.shape[0])
    check_folds(flags, extra)
    train_idx, val_idx, val, validate = split_windows(flags, task, X, y, groups, extra)
    task.fit(y[train_idx], where)
    split, test = split_record(flags, task, X, y, groups, extra, train_idx, val, validate)
    signal = check_signal(flags, X)
    n, c, f, t = X.shape
    return {"X": X, "y": y, "groups": groups, "task": task, "shape": (n, c, f, t), "train_idx": train_idx,
            "channels": signal.get("channels"), "signal": signal, "val": val, "test": test, "split": split,
            "ledger": ledger.make(groups, train_idx, val_idx)}


def read_held_out(flags, task_cls, X):
    """--elec/--bands against X, and --x-val/--x-test read and checked against X's (C, F)
    -> {"val"/"test": (windows, targets, source, indices)}."""
    n, c, f, t = X.shape
    for flag, given, seen in (("--elec", flags.elec, c), ("--bands", flags.bands, f)):
        if given is not None and given != seen:
            raise UserError(f"{flags.x}: {flag} {given} contradicts the data, which has {seen} "
                            f"(X shape {tuple(X.shape)} is (N, C, F, T))")
    extra = {}
    for name, xp, yp in (("val", flags.x_val, flags.y_val), ("test", flags.x_test, flags.y_test)):
        if bool(xp) != bool(yp) and not (xp and parquet.is_parquet(xp)) and task_cls.target_kind is not None:
            raise UserError(f"--x-{name} and --y-{name} go together")
        if xp:
            Xe, ye, _, where_e = _read(xp, yp, flags, task_cls)
            if Xe.shape[1:3] != (c, f):
                raise UserError(f"{xp}: windows are (C, F) = {tuple(Xe.shape[1:3])}, the training data's are {(c, f)}")
            extra[name] = (Xe, ye, where_e, np.arange(len(Xe)))     # windows, targets, source, indices
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
    n = X.shape[0]
    validate = "val" in extra or flags.val_split > 0 or flags.fold is not None
    if flags.split == "group" and groups is None and "val" not in extra:
        raise UserError("--split group needs --groups groups.npy (or --group-col with parquet): "
                        "one group id, e.g. subject, per window")
    val_idx = None
    if flags.folds:                      # cross-validation: held-out folds of X
        train_idx, val_idx, test_idx = fold_split(task.strata(y), n, flags.folds, flags.fold, flags.test_fold,
                                                  flags.fold_seed, groups, flags.split, flags.val_split, flags.seed,
                                                  where=flags.x)
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
                                           where=flags.x, n=n)
        val = (X, y, val_idx)
    return train_idx, val_idx, val, validate


def split_record(flags, task, X, y, groups, extra, train_idx, val, validate):
    """summary.json's "split" (windows, targets and groups on each side) and the test windows
    (X, y, idx) or None."""
    def describe(targets, idx, grp, list_groups=False):
        d = {"windows": int(len(idx)), **task.describe_targets(targets[idx])}
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
    the shape checked against it, and --x-val's and --x-test's signal against it."""
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
