"""Which windows validate: random, stratified, or by group (no subject on both sides)."""
import numpy as np

from ..errors import UserError


def split_indices(strata, val_split, seed, method="stratified", groups=None, where="y", n=None):
    """Split window indices into (train, val), both sorted. strata (N,): the task's discrete
    targets (class labels), kept in proportion by a stratified split; None (regression,
    pretraining): the split is random, over `n` windows.

    random: a seeded permutation. stratified: the same fraction of every stratum goes to
    validation. group: whole groups (e.g. subjects) go to one side, so no group is on both.
    """
    y = strata
    n = len(y) if strata is not None else n
    if method == "stratified" and strata is None:      # a task without discrete targets
        method = "random"
    if not 0.0 < val_split < 1.0:
        raise UserError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
    rng = np.random.default_rng(seed)
    if method == "random":
        perm = rng.permutation(n)
        n_val = int(round(n * val_split))
        val = perm[:n_val]
    elif method == "stratified":
        val = []
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            k = int(round(len(members) * val_split))
            val.append(members[:min(k, len(members) - 1)])  # keep at least one for training
        val = np.concatenate(val)
    elif method == "group":
        if groups is None:
            raise UserError("--split group needs --groups (one group id per window)")
        uniq = rng.permutation(np.unique(groups))
        n_val_groups = int(round(len(uniq) * val_split))
        if len(uniq) < 2 or n_val_groups in (0, len(uniq)):
            raise UserError(f"{where}: {len(uniq)} group(s) cannot be split {1 - val_split:.0%}/{val_split:.0%}; need more groups")
        val = np.flatnonzero(np.isin(groups, uniq[:n_val_groups]))
    else:
        raise ValueError(method)
    is_val = np.zeros(n, bool)
    is_val[val] = True
    train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(val) == 0 or len(train) == 0:
        raise UserError(f"{where}: {n} windows are too few for --val-split {val_split} "
                        f"({len(train)} train / {len(val)} val); add data or change --val-split")
    return train, val


def kfold_indices(strata, k, seed, groups=None, where="groups", n=None):
    """k folds of windows 0..N-1, each class (stratum) dealt out evenly over them, in seeded order;
    with groups (N,), whole groups (subjects) are dealt out instead, so none is on both sides.
    strata None: `n` windows dealt out at random.
    -> [(train, held_out), ...], k pairs of sorted index arrays."""
    n = len(strata) if strata is not None else n
    rng = np.random.default_rng(seed)
    if groups is not None:
        ids = np.unique(groups)
        if len(ids) < k:
            raise UserError(f"{where}: {len(ids)} group(s) cannot make {k} cross-validation folds; need at least {k}")
        fold_of = dict(zip(rng.permutation(ids).tolist(), np.arange(len(ids)) % k))
        fold = np.array([fold_of[g] for g in np.asarray(groups).tolist()])
        return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]
    fold = np.empty(n, np.int64)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    start = 0
    for members in groups:
        fold[rng.permutation(members)] = (np.arange(len(members)) + start) % k
        start += len(members)               # the next class starts where this one stopped
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]


def fold_split(strata, n, folds, fold, test_fold, fold_seed, groups=None, method="stratified", val_split=0.2,
               seed=0, where="X"):
    """train.py --folds K --fold i / --test-fold j: window indices (train, val, test), each sorted,
    val or test None when not asked for.

    The K folds are kfold_indices' (seeded by fold_seed, not by the run's --seed, so every seed
    and every sweep point sees the same folds): classes dealt out evenly (method stratified),
    whole groups with method group (K = the number of groups: leave-one-subject-out), else at
    random. Fold i validates, fold j is held out for testing; with a test fold and no validation
    fold, validation is --val-split of the rest, split as `method` says (none at --val-split 0)."""
    if fold is None and test_fold is None:
        raise UserError(f"--folds {folds} needs --fold I (the validation fold) and/or --test-fold J "
                        f"(the held-out test fold), each 0..{folds - 1}")
    for flag, value in (("--fold", fold), ("--test-fold", test_fold)):
        if value is not None and value >= folds:
            raise UserError(f"{flag} {value}: folds are numbered 0..{folds - 1} (--folds {folds})")
    if fold is not None and fold == test_fold:
        raise UserError(f"--fold {fold} and --test-fold {test_fold}: the validation and test folds must differ")
    if method == "group" and groups is None:
        raise UserError("--split group needs --groups groups.npy (or --group-col with parquet): "
                        "one group id, e.g. subject, per window")
    if method == "stratified" and strata is None:
        method = "random"
    if method != "group" and folds > n // 2:
        raise UserError(f"{where}: --folds {folds} on {n} windows leaves fewer than 2 windows in a fold; "
                        f"use at most {max(2, n // 2)}")
    by_class = strata if method == "stratified" else None
    parts = kfold_indices(by_class, folds, fold_seed, groups if method == "group" else None, where=where, n=n)
    held = [f for f in (fold, test_fold) if f is not None]
    train = np.setdiff1d(np.arange(n), np.concatenate([parts[f][1] for f in held]))
    val = parts[fold][1] if fold is not None else None
    test = parts[test_fold][1] if test_fold is not None else None
    if fold is None and val_split > 0:          # validation from the folds left for training
        sub = strata[train] if strata is not None else None
        tr, va = split_indices(sub, val_split, seed, method, groups[train] if groups is not None else None,
                               where=where, n=len(train))
        train, val = train[tr], train[va]
    for name, idx in (("training", train), ("validation", val), ("test", test)):
        if idx is not None and len(idx) == 0:
            raise UserError(f"{where}: {n} windows leave no {name} windows in --folds {folds}; use fewer folds")
    return train, val, test
