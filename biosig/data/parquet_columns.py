"""Parquet columns to numpy, checked on Arrow buffers (what parquet.py's reader calls per record
batch): a signal column's nested lists against the first window's shape (SignalColumn), a
label or group column (id_column), a target column of numbers or equal-length lists
(target_column). Every problem is one UserError naming the file, the column and the row.
"""
import numpy as np

from ..errors import UserError


def list_depth(pa, t):
    """(number of nested list levels, leaf type) of an Arrow type."""
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t, depth = t.value_type, depth + 1
    return depth, t


def first_true(mask):
    return int(np.flatnonzero(mask)[0])


class SignalColumn:
    """Checks one signal column chunk by chunk against the shape of the very first window.

    `ref` is shared by all signal columns of a read (the channel columns must agree): the
    allowed nestings {depth: names of the levels}, then the depth and the lengths at each
    level, both fixed by the first column and row seen.
    """

    def __init__(self, name, ref):
        self.name, self.ref = name, ref

    def check_type(self, pa, file, t):
        depth, leaf = list_depth(pa, t)
        if depth not in self.ref["levels"]:
            raise UserError(f"{file}: column '{self.name}' holds {t}; expected {self.ref['expect']} per row")
        if not (pa.types.is_floating(leaf) or pa.types.is_integer(leaf)):
            raise UserError(f"{file}: column '{self.name}' holds {t}, not numbers")
        if self.ref["depth"] is None:
            self.ref["depth"], self.ref["type_of"] = depth, (file, self.name, t)
        elif depth != self.ref["depth"]:
            f0, c0, t0 = self.ref["type_of"]
            raise UserError(f"{file}: column '{self.name}' holds {t} but column '{c0}' of {f0} holds {t0}; "
                            f"every window must have the same nesting")

    def values(self, pa, pc, file, chunk, row0):
        """One Arrow chunk of n rows -> its leaf values as numpy (n * prod(shape),), checked.

        row0: index of the chunk's first row in the file, so messages give rows of the file.
        """
        depth, shape = self.ref["depth"], self.ref["shape"]
        first_window = shape is None
        if first_window:
            shape = []
        level, per_row = chunk, 1  # per_row: elements of `level` per window
        for d, what in enumerate(self.ref["levels"][depth]):
            if level.null_count:
                bad = first_true(level.is_null().to_numpy(zero_copy_only=False))
                raise UserError(f"{file}: column '{self.name}' row {row0 + bad // per_row} has a missing (null) "
                                f"value in place of its {what}")
            if pa.types.is_fixed_size_list(level.type):
                lengths = np.full(len(level), level.type.list_size)
            else:
                lengths = pc.list_value_length(level).to_numpy(zero_copy_only=False)
            if first_window:
                shape.append(int(lengths[0]))
                if shape[-1] == 0:
                    raise UserError(f"{file}: column '{self.name}' row {row0} has 0 {what}; windows must not be empty")
            mismatch = lengths != shape[d]
            if mismatch.any():
                bad = first_true(mismatch)
                raise UserError(f"{file}: column '{self.name}' row {row0 + bad // per_row} has {int(lengths[bad])} "
                                f"{what}, expected {shape[d]} as in the first window; every window must have the "
                                f"same shape")
            level, per_row = level.flatten(), per_row * shape[d]
        if level.null_count:
            bad = first_true(level.is_null().to_numpy(zero_copy_only=False))
            raise UserError(f"{file}: column '{self.name}' row {row0 + bad // per_row} has a missing (null) value")
        if first_window:
            self.ref["shape"] = shape
        return level.to_numpy(zero_copy_only=False)


def id_column(pa, pc, file, batch, name, kind, row0=0):
    """A label or group column of a record batch -> numpy (n,), checked.

    kind: 'label' (integers) or 'group' (ints or strings); row0: the batch's first row in its file.
    """
    col = batch.column(name)
    if pa.types.is_dictionary(col.type):  # e.g. a pandas categorical
        col = col.cast(col.type.value_type)
    if col.null_count:
        bad = first_true(pc.is_null(col).to_numpy(zero_copy_only=False))
        raise UserError(f"{file}: column '{name}' row {row0 + bad} is missing (null)")
    t = col.type
    if kind == "label":
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return col.to_numpy(zero_copy_only=False).astype(np.int64)
        if pa.types.is_floating(t):  # pandas turns int columns that once held NaN into floats
            v = col.to_numpy(zero_copy_only=False)
            integral = np.isfinite(v) & (v == np.round(v))
            if not integral.all():
                bad = first_true(~integral)
                raise UserError(f"{file}: column '{name}' row {row0 + bad} holds {v[bad]}; labels must be integers "
                                f"(real-valued targets: --task regression)")
            return v.astype(np.int64)
        raise UserError(f"{file}: column '{name}' holds {t}; labels must be integers")
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t):
        return col.to_numpy(zero_copy_only=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.to_numpy(zero_copy_only=False).astype(str)  # '<U' rather than object: np.save never needs pickle
    raise UserError(f"{file}: column '{name}' holds {t}; group ids must be integers or strings")


def target_column(pa, pc, file, batch, name, row0=0):
    """A target column of any numeric kind -> numpy (n,) for numbers, (n, D) for lists of D
    numbers (D targets, or one label per frame); every row's list the same length."""
    col = batch.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if col.null_count:
        bad = first_true(pc.is_null(col).to_numpy(zero_copy_only=False))
        raise UserError(f"{file}: column '{name}' row {row0 + bad} is missing (null)")
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t):
        return col.to_numpy(zero_copy_only=False)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = t.value_type
        if not (pa.types.is_integer(inner) or pa.types.is_floating(inner) or pa.types.is_boolean(inner)):
            raise UserError(f"{file}: column '{name}' holds lists of {inner}; targets must be numbers or lists of numbers")
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            bad = first_true(lengths != lengths[0])
            raise UserError(f"{file}: column '{name}' row {row0 + bad} holds {lengths[bad]} values, row {row0} "
                            f"holds {lengths[0]}; every row needs the same number")
        values = col.flatten()
        if values.null_count:
            raise UserError(f"{file}: column '{name}' holds a missing (null) value inside a list")
        return values.to_numpy(zero_copy_only=False).reshape(len(col), -1)
    raise UserError(f"{file}: column '{name}' holds {t}; targets must be numbers or lists of numbers")
