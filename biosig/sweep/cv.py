"""sweep.py --cv: cross-validation as a dimension of the sweep, like seeds.

--cv K runs every point on every fold (train.py --folds K --fold i); --cv loso does the same
with one fold per group (--split group, K = the number of groups in --groups / --group-col):
leave-one-subject-out. Points are ranked by their mean over folds (and seeds), never by one
fold. --nested adds an outer loop: each fold in turn is held out as test data (--test-fold j)
and the point is chosen on the other folds alone, so the reported test score is of data that
chose nothing (nested cross-validation, K x (K - 1) trials per point).
"""
import numpy as np

from ..errors import UserError
from .flags import strict_parser

OWN = ("folds", "fold", "test_fold")        # train.py options the sweep sets with --cv


def n_windows(parsed):
    """How many windows a .npy --x holds (from its header), or None (parquet, or --x in the grid)."""
    from ..data import parquet, read_npy_header
    if not parsed.x or parquet.is_parquet(parsed.x):
        return None
    shape = read_npy_header(parsed.x, "X")[0]
    return shape[0] if shape else None


def count_groups(parsed):
    """The number of distinct groups in --groups groups.npy (one per window of a .npy --x), or
    in a parquet --x's --group-col."""
    from ..data import load_groups, parquet, read_npy_header
    if parsed.groups:
        n = n_windows(parsed)
        if n is None:
            shape = read_npy_header(parsed.groups, "groups")[0]
            n = shape[0] if shape else 1
        return len(np.unique(load_groups(parsed.groups, n)))
    if parsed.group_col and parsed.x and parquet.is_parquet(parsed.x):
        pq = parquet._import_pyarrow(parsed.x)[2]
        first = parquet._parquet_files(parsed.x)[0]
        names = pq.read_schema(first).names
        if parsed.group_col not in names:
            raise UserError(f"{first}: no column '{parsed.group_col}' (columns: {', '.join(names)})")
        return len(pq.read_table(parsed.x, columns=[parsed.group_col]).column(parsed.group_col).unique())
    return None


def setup(args, shared, grids, options, train_parser):
    """-> (flags every trial adds, [(fold, test_fold), ...] or None, {"k", "loso", "nested"} or None)."""
    if args.cv is None:
        if args.nested:
            raise UserError("--nested goes with --cv K (or --cv loso): it holds each fold out in turn as test data")
        return [], None, None
    for grid in grids:
        for flag in grid:
            if options["--" + flag].dest in OWN:
                raise UserError(f"{args.grid}: '{flag}' is set for each trial by --cv; leave it out of the grid")
    given = {options[t.split("=", 1)[0]].dest for t in shared if t.split("=", 1)[0] in options}
    for dest in OWN:
        if dest in given:
            raise UserError(f"train.py flags after --: --{dest.replace('_', '-')} is set for each trial by --cv")
    parsed = strict_parser(train_parser, "train.py flags after --").parse_args(shared)
    if parsed.x_val:
        raise UserError("train.py flags after --: --x-val and --cv: with --cv each fold validates in turn; "
                        "leave --x-val out")
    if args.nested and parsed.x_test:
        raise UserError("train.py flags after --: --x-test and --nested: --nested holds each fold of --x out as "
                        "test data; give one or the other")
    extra = []
    if args.cv == "loso":
        k = count_groups(parsed)
        if k is None:
            raise UserError("--cv loso needs the windows' groups after --: --groups groups.npy (or --group-col "
                            "with a parquet --x), one subject id per window")
        if "split" in given and parsed.split != "group":
            raise UserError(f"--cv loso holds out whole groups; --split {parsed.split} after -- contradicts it")
        if k < 2:
            raise UserError(f"--cv loso: {parsed.groups or parsed.x} has {k} group; leaving one out needs 2 or more")
        if "split" not in given:
            extra += ["--split", "group"]
    else:
        k = args.cv
        if parsed.split == "group":         # every trial would fail the same way: say it now
            groups = count_groups(parsed)
            if groups is None:
                raise UserError("train.py flags after --: --split group needs --groups groups.npy (or --group-col "
                                "with a parquet --x)")
            if groups < k:
                raise UserError(f"--cv {k}: {parsed.groups or parsed.x} has {groups} group(s); whole groups cannot "
                                f"make {k} folds (--cv loso: one fold per group)")
        elif (n := n_windows(parsed)) is not None and k > n // 2:
            raise UserError(f"--cv {k}: {parsed.x} has {n} windows, fewer than 2 per fold")
    if args.nested and k < 3:
        raise UserError(f"--nested needs 3 or more folds (one test, one validation, the rest to train); --cv has {k}")
    extra = ["--folds", str(k)] + extra
    if args.nested:
        pairs = [(inner, outer) for outer in range(k) for inner in range(k) if inner != outer]
    else:
        pairs = [(i, None) for i in range(k)]
    return extra, pairs, {"k": k, "loso": args.cv == "loso", "nested": bool(args.nested)}


def test_metric(name):
    """The test-set number that matches a validation objective: val_acc -> acc, val_loss -> loss."""
    return name[4:] if name.startswith("val_") else name


def per_fold(trials, value_of):
    """{point_id: {(test_fold, fold): mean over seeds}} of the completed trials' values."""
    table = {}
    for t in trials:
        value = value_of(t) if t.status == "completed" else None
        if value is not None:
            table.setdefault(t.point_id, {}).setdefault((t.test_fold, t.fold), []).append(value)
    return {p: {k: float(np.mean(v)) for k, v in cells.items()} for p, cells in table.items()}


def nested_selection(trials, value_of, test_of, mode):
    """Nested cross-validation: for each outer fold j, the point with the best mean validation
    objective over the trials that never saw fold j, and that point's mean test score on fold j.
    -> [{"test_fold", "point", "params", "selection", "test", "n"}], one per outer fold."""
    outer = sorted({t.test_fold for t in trials if t.test_fold is not None})
    sign = 1 if mode == "min" else -1
    chosen = []
    for j in outer:
        points = {}
        for t in trials:
            if t.test_fold == j and t.status == "completed" and value_of(t) is not None:
                points.setdefault(t.point_id, []).append(t)
        if not points:
            continue
        best = min(points.values(), key=lambda ts: sign * np.mean([value_of(t) for t in ts]))
        tests = [test_of(t) for t in best if test_of(t) is not None]
        chosen.append({"test_fold": j, "point": best[0].point_id, "params": best[0].params, "n": len(best),
                       "selection": float(np.mean([value_of(t) for t in best])),
                       "test": float(np.mean(tests)) if tests else None})
    return chosen
