"""Which windows validate: random, stratified, or by group (no subject on both sides)."""
import numpy as np

from ..errors import UserError


def split_indices(strata, val_split, seed, method="stratified", groups=None, where="y"):
    """Split window indices into (train, val), both sorted. strata (N,): the task's discrete
    targets (class labels), kept in proportion by a stratified split.

    random: a seeded permutation. stratified: the same fraction of every stratum goes to
    validation. group: whole groups (e.g. subjects) go to one side, so no group is on both.
    """
    y = strata
    n = len(y)
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
