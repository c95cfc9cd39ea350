"""Several named arrays that travel as one: the modalities of a multi-input run ({"ppg": (N, 1, 1,
512), "acc": (N, 3, 1, 256)}) and the targets of a multi-task run ({"hr": (N,), "act": (N,)}).

A value here is either one array (numpy or torch) or a dict of them, name -> array, all with the
same first axis (windows, or a batch's rows). The functions below treat both alike, so that the
batch reader, the loop and inference need no branch for several inputs or several targets.
"""


def each(fn, value):
    """fn applied to the array, or to every array of the dict (a new dict, same names and order)."""
    return {k: fn(v) for k, v in value.items()} if isinstance(value, dict) else fn(value)


def rows(value):
    """The length of the first axis (N windows, or B rows of a batch)."""
    return len(next(iter(value.values()))) if isinstance(value, dict) else len(value)


def take(value, index):
    """value[index] along the first axis, for every array."""
    return each(lambda a: a[index], value)


def concat(parts, cat):
    """A list of values (arrays, or dicts of them) -> one, joined along the first axis by `cat`
    (np.concatenate or torch.cat)."""
    if isinstance(parts[0], dict):
        return {k: cat([p[k] for p in parts]) for k in parts[0]}
    return cat(parts)


def first(value):
    """The array itself, or the first array of the dict (what the reader's messages name)."""
    return next(iter(value.values())) if isinstance(value, dict) else value
