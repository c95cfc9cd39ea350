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


def _read(x, y, args, task_cls):
    """data.read_source with this run's parquet options, --load and the task's target kind."""
    return read_source(x, y, x_col=args.x_col, signal_cols=args.signal_cols, label_col=args.label_col,
                       group_col=args.group_col, load=args.load, target_kind=task_cls.target_kind)


def prepare_data(args):
    """Open and check the training data (and explicit validation/test data), build the task, split.

    Returns a dict: X, y, task, train_idx, val (X, y, idx), test (X, y) or None,
    shape (N, C, F, T), channels (names or None), signal (biosig.signalspec: the input's
    sampling rate, channels, units, band-power frames, as far as known), split (for summary.json)."""
    task_cls = TASKS[args.task]
    if parquet.is_parquet(args.x) and not args.signal_cols:     # a table of one column per named channel
        args.signal_cols = ",".join(signalspec.read(args.x).get("channels") or []) or None
    if task_cls.target_kind is None and (args.y or args.y_val or args.y_test):
        warn(f"--task {args.task} learns from the windows alone: --y, --y-val and --y-test are not read")
    X, y, groups, where = _read(args.x, args.y, args, task_cls)
    n, c, f, t = X.shape
    for flag, given, seen in (("--elec", args.elec, c), ("--bands", args.bands, f)):
        if given is not None and given != seen:
            raise UserError(f"{args.x}: {flag} {given} contradicts the data, which has {seen} "
                            f"(X shape {tuple(X.shape)} is (N, C, F, T))")
    extra = {}
    for name, xp, yp in (("val", args.x_val, args.y_val), ("test", args.x_test, args.y_test)):
        if bool(xp) != bool(yp) and not (xp and parquet.is_parquet(xp)) and task_cls.target_kind is not None:
            raise UserError(f"--x-{name} and --y-{name} go together")
        if xp:
            Xe, ye, _, where_e = _read(xp, yp, args, task_cls)
            if Xe.shape[1:3] != (c, f):
                raise UserError(f"{xp}: windows are (C, F) = {tuple(Xe.shape[1:3])}, the training data's are {(c, f)}")
            extra[name] = (Xe, ye, where_e, np.arange(len(Xe)))     # windows, targets, source, indices
    task = task_cls.from_targets(options.task_values(args), [(y, where)] + [(e[1], e[2]) for e in extra.values()])

    if args.groups:
        groups = load_groups(args.groups, n)
    if args.folds is None and args.fold_seed:
        raise UserError("--fold-seed seeds the --folds assignment; give --folds K")
    if args.folds is None and (args.fold is not None or args.test_fold is not None):
        raise UserError(f"{'--fold' if args.fold is not None else '--test-fold'} needs --folds K (the number of folds)")
    for flag, name in (("--x-val", "val"), ("--x-test", "test")):
        if args.folds and name in extra and (args.test_fold if name == "test" else args.fold) is not None:
            raise UserError(f"{flag} and --folds: give the {'validation' if name == 'val' else 'test'} windows "
                            f"one way (a file, or a fold of --x)")
    validate = "val" in extra or args.val_split > 0 or args.fold is not None
    if args.split == "group" and groups is None and "val" not in extra:
        raise UserError("--split group needs --groups groups.npy (or --group-col with parquet): "
                        "one group id, e.g. subject, per window")
    val_idx = None
    if args.folds:                      # cross-validation: held-out folds of X
        train_idx, val_idx, test_idx = fold_split(task.strata(y), n, args.folds, args.fold, args.test_fold,
                                                  args.fold_seed, groups, args.split, args.val_split, args.seed,
                                                  where=args.x)
        validate = val_idx is not None or "val" in extra
        if "val" in extra:
            val = (extra["val"][0], extra["val"][1], extra["val"][3])
        else:
            val = (X, y, val_idx) if val_idx is not None else None
        if test_idx is not None:
            extra["test"] = (X, y, args.x, test_idx)
    elif "val" in extra:
        train_idx = np.arange(n)
        val = (extra["val"][0], extra["val"][1], extra["val"][3])
    elif not validate:                  # --val-split 0: every window trains
        train_idx, val = np.arange(n), None
    else:
        train_idx, val_idx = split_indices(task.strata(y), args.val_split, args.seed, args.split, groups,
                                           where=args.x, n=n)
        val = (X, y, val_idx)
    task.fit(y[train_idx], where)

    def describe(targets, idx, grp, list_groups=False):
        d = {"windows": int(len(idx)), **task.describe_targets(targets[idx])}
        if grp is not None:
            ids = np.unique(grp[idx])
            d["groups"] = int(len(ids))
            if list_groups:     # which subjects/recordings were held out, to report or reuse
                d["group_ids"] = ids.tolist()
        return d

    method = "random" if args.split == "stratified" and task.strata(y) is None else args.split
    split = {"method": "explicit" if "val" in extra else method if validate else "none",
             "train": describe(y, train_idx, groups),
             "val": describe(val[1], val[2], groups if "val" not in extra else None, list_groups=True)
             if validate else None}
    if args.folds:
        split["folds"] = {"k": args.folds, "fold": args.fold, "test_fold": args.test_fold, "seed": args.fold_seed,
                          "by": method}
    if "val" in extra:
        split["val_source"] = args.x_val
    test = None
    if "test" in extra:
        Xt, yt, _, test_idx = extra["test"]
        split["test"] = describe(yt, test_idx, groups if Xt is X else None, list_groups=True)
        test = (Xt, yt, test_idx)
    columns = parquet.parse_columns(args.signal_cols) if args.signal_cols and parquet.is_parquet(args.x) else None
    signal = signalspec.given(args.x, args.fs, args.channel_names, columns)
    if not (args.standardize or args.normalize):       # volts straight from MNE train at chance, silently
        scale = float(np.asarray(X[:min(n, 64)], dtype=np.float64).std())
        if 0 < scale < 1e-3:
            warn(f"{args.x}: its values are tiny (std {scale:.1e}{'; volts?' if signal.get('units') == 'V' else ''}): "
                 f"add --standardize (or scale X) or the model may not learn")
    signalspec.check_shape(signal, X.shape, args.x)
    for flag, path in (("--x-val", args.x_val), ("--x-test", args.x_test)):
        other = signalspec.read(path)
        if other and {k: other.get(k) for k in signalspec.KEYS} != {k: signal.get(k) for k in signalspec.KEYS}:
            raise UserError(f"{path}: {flag}'s signal ({signalspec.describe(other)}) is not the training windows' "
                            f"({signalspec.describe(signal)})")
    return {"X": X, "y": y, "groups": groups, "task": task, "shape": (n, c, f, t), "train_idx": train_idx,
            "channels": signal.get("channels"), "signal": signal, "val": val, "test": test, "split": split,
            "ledger": ledger.make(groups, train_idx, val_idx)}
