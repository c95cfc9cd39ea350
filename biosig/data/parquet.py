"""Reading and writing windows as a parquet table: one row per window.

The signal of a row is either one column holding the whole window as nested lists of shape
(C, F, T) or (C, T) (read as F = 1), or one column per channel, each holding (T,) values or
(F, T) nested lists. A label column holds integer class ids; an optional group column (e.g.
subject) holds ints or strings; other columns are never read. A path may be one .parquet
file or a directory of them, read in sorted name order as one table.

Windows are converted on Arrow buffers, not row by row: each nesting level is checked with
vectorised length and null tests, and the leaf values are copied once, straight into the
final (N, C, F, T) float32 array (a column's checks: parquet_columns.py). pyarrow is optional
and imported only here, when used.
"""
import os

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError, needs
from .parquet_columns import SignalColumn, first_true, id_column, target_column

SUFFIXES = (".parquet", ".pq")


def is_parquet(path):
    """True for a path ending in .parquet/.pq (existing or not) or a directory holding such files."""
    path = os.fspath(path)
    if os.path.isdir(path):
        try:
            return bool(_dir_files(path))
        except OSError:  # unreadable: let the parquet reader say so
            return True
    return path.lower().endswith(SUFFIXES)


def names_a_column(label_option):
    """A --y / --y-val / --y-test value names a parquet label column unless it is a .npy file."""
    return not (label_option.endswith(".npy") or os.path.isfile(label_option))


def parse_columns(text):
    """'ch1,ch2, ch3' -> ['ch1', 'ch2', 'ch3']; None or '' -> None (the --signal-cols flag)."""
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()] or None


def table_columns(names, path):
    """--signal-cols `names` as the table at `path` spells them: a name it lacks is matched to one
    of its columns ignoring case where that is unambiguous (FZ and Fz are one electrode). ->
    (columns, ["fz as Fz", ...] the names so matched). A name with no such match is left for the
    reader to refuse."""
    pa, _, pq = _import_pyarrow(path)
    with _open(pa, pq, _parquet_files(os.fspath(path))[0]) as pf:
        have = pf.schema_arrow.names
    folded = {}
    for name in have:
        folded.setdefault(name.casefold(), []).append(name)
    asked = [name.casefold() for name in names]
    columns, matched = [], []
    for name in names:
        alike = folded.get(name.casefold(), [])
        if name not in have and len(alike) == 1 and asked.count(name.casefold()) == 1:
            columns.append(alike[0])
            matched.append(f"{name} as {alike[0]}")
        else:
            columns.append(name)
    return columns, matched


def _import_pyarrow(path, doing="reading"):
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise needs(f"{path}: {doing} parquet", "pyarrow") from None
    return pa, pc, pq


def _dir_files(path):
    # Like pyarrow.dataset: names starting with '.' or '_' (temp files, _SUCCESS, _metadata) are skipped.
    return [os.path.join(path, name) for name in sorted(os.listdir(path))
            if name.lower().endswith(SUFFIXES) and not name.startswith((".", "_"))]


def _parquet_files(path):
    """The files behind `path`: [path] for a file, the sorted *.parquet/*.pq for a directory."""
    if os.path.isdir(path):
        try:
            files = _dir_files(path)
        except OSError as e:
            raise UserError(f"{path}: cannot list directory ({e.strerror})") from None
        if not files:
            raise UserError(f"{path}: directory holds no *.parquet files")
        return files
    if not os.path.exists(path):
        raise UserError(f"{path}: file not found")
    return [path]


def _open(pa, pq, file):
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{file}: not a readable parquet file ({detail})") from None


BATCH_BYTES = 64 << 20


def _rows_per_batch(metadata, wanted):
    """Rows per streamed batch so that the wanted columns take about BATCH_BYTES."""
    size = total = 0
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        total += group.total_byte_size
        for j in range(group.num_columns):
            column = group.column(j)
            if column.path_in_schema.split(".")[0] in wanted:
                size += column.total_uncompressed_size
    per_row = (size or total) / max(metadata.num_rows, 1)
    return max(1, int(BATCH_BYTES // max(per_row, 1)))


def _fill(pa, pc, file, batch, signals, per_channel, X, n_total, at, row0):
    """Check the signal columns of one record batch and copy them into X[at:at + n].

    per_channel: the signals are one column per channel rather than one column of windows.
    X (N, C, F, T) float32 is allocated here at the first window, whose shape fixes (C, F, T);
    (C, T) and (T,) rows mean F = 1. row0: the batch's first row in its file. Returns X.
    """
    n = batch.num_rows
    if n == 0:
        return X
    for c, s in enumerate(signals):
        values = s.values(pa, pc, file, batch.column(s.name), row0)
        if X is None:
            c_f_t = (len(signals), *s.ref["shape"]) if per_channel else tuple(s.ref["shape"])
            if len(c_f_t) == 2:
                c_f_t = (c_f_t[0], 1, c_f_t[1])
            X = np.empty((n_total, *c_f_t), dtype=np.float32)
        if per_channel:
            X[at:at + n, c] = values.reshape(n, *X.shape[2:])
        else:
            X[at:at + n] = values.reshape(n, *X.shape[1:])
    finite = np.isfinite(X[at:at + n].reshape(n, -1)).all(axis=1)
    if not finite.all():
        raise UserError(f"{file}: row {row0 + first_true(~finite)} holds NaN or Inf in its window")
    return X


def read_windows_table(path, x_col="x", signal_cols=None, label_col="label", group_col=None, need_labels=True,
                       label_kind="integer"):
    """Read windows from a parquet file or a directory of them (sorted by name, one table).

    Signal: column `x_col` with (C, F, T) or (C, T) nested lists per row, or, when
    `signal_cols` is given, one column per channel with (F, T) or (T,) per row.
    Returns (X float32 (N, C, F, T) C-contiguous, y int64 (N,) or None, groups (N,) or None).
    label_kind "integer" reads class ids (checked here); anything else reads the column's numbers
    or equal-length lists of numbers as they are, (N,) or (N, D), for the caller to check.
    y is None only when need_labels is False and the label column is absent; groups is None
    when group_col is None, else the ids as stored (ints, or strings as a '<U' array).
    Every problem with the table raises UserError naming the file, the column and the row.
    """
    path = os.fspath(path)
    pa, pc, pq = _import_pyarrow(path)
    files = _parquet_files(path)
    if signal_cols:
        signal_cols = list(signal_cols)
        dup = [c for i, c in enumerate(signal_cols) if c in signal_cols[:i]]
        if dup:
            raise UserError(f"{path}: signal columns name '{dup[0]}' twice")
        ref = {"levels": {1: ("frames (T)",), 2: ("bands (F)", "frames (T)")},
               "expect": "(T,) values or (F, T) nested lists", "depth": None, "shape": None}
        signals = [SignalColumn(c, ref) for c in signal_cols]
    else:
        ref = {"levels": {2: ("channels (C)", "frames (T)"), 3: ("channels (C)", "bands (F)", "frames (T)")},
               "expect": "(C, T) or (C, F, T) nested lists", "depth": None, "shape": None}
        signals = [SignalColumn(x_col, ref)]

    # First pass, metadata only: every file has the columns; count rows to allocate X once.
    plan, n_total, with_labels = [], 0, None
    for file in files:
        with _open(pa, pq, file) as pf:
            schema, n_rows = pf.schema_arrow, pf.metadata.num_rows
        if with_labels is None:  # labels are optional only if the first file lacks them
            with_labels = need_labels or label_col in schema.names
        wanted = [s.name for s in signals] + ([label_col] if with_labels else []) + ([group_col] if group_col else [])
        for name in wanted:
            if name not in schema.names:
                shown = ", ".join(schema.names[:20]) + (f", ... ({len(schema.names)} in all)"
                                                        if len(schema.names) > 20 else "")
                raise UserError(f"{file}: no column '{name}' (columns: {shown})")
        for s in signals:
            s.check_type(pa, file, schema.field(s.name).type)
        plan.append((file, wanted))
        n_total += n_rows
    if n_total == 0:
        raise UserError(f"{path}: no rows (no windows)" if len(files) == 1 else
                        f"{path}: no rows (no windows) in any of its {len(files)} parquet files")

    # Second pass: stream only the needed columns in batches of ~BATCH_BYTES, straight into X,
    # so the Arrow copy of the data never needs more than one batch of memory.
    X, ys, gs, start = None, [], [], 0
    for file, wanted in plan:
        try:
            with _open(pa, pq, file) as pf:
                row0 = 0
                for batch in pf.iter_batches(batch_size=_rows_per_batch(pf.metadata, wanted), columns=wanted):
                    X = _fill(pa, pc, file, batch, signals, bool(signal_cols), X, n_total, start + row0, row0)
                    if with_labels:
                        ys.append(id_column(pa, pc, file, batch, label_col, "label", row0)
                                  if label_kind == "integer" else target_column(pa, pc, file, batch, label_col, row0))
                    if group_col:
                        gs.append((file, id_column(pa, pc, file, batch, group_col, "group", row0)))
                    row0 += batch.num_rows
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"{file}: cannot read parquet data ({str(e).strip().splitlines()[0]})") from None
        start += row0
    assert start == n_total, (start, n_total)
    y = np.concatenate(ys) if with_labels else None
    groups = None
    if group_col:
        gs = [(file, g) for file, g in gs if len(g)]
        strings = gs[0][1].dtype.kind == "U"
        for file, g in gs:
            if (g.dtype.kind == "U") != strings:
                raise UserError(f"{file}: column '{group_col}' holds {'numbers' if strings else 'strings'} but "
                                f"{gs[0][0]} holds {'strings' if strings else 'numbers'}")
        groups = np.concatenate([g for _, g in gs])
    return X, y, groups


def _fixed_lists(pa, values, sizes):
    """Flat Arrow values -> fixed-size lists nested by `sizes` (outermost first)."""
    for size in reversed(sizes):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def write_windows_table(path, X, y=None, groups=None, x_col="x", label_col="label", group_col="group",
                        layout="nested", signal_cols=None):
    """Write windows X (N, C, F, T) (or (N, C, T)) as a parquet table, atomically.

    layout 'nested': column `x_col` holds (C, F, T) lists per row, or (C, T) when F == 1.
    layout 'channels': one column per channel (`signal_cols`, default ch0..ch{C-1}) holding
    (F, T) lists, or (T,) when F == 1. Values are stored as float32 fixed-size lists; y (N,)
    in `label_col` as int64 (integers) or float64, y (N, D) as fixed-size lists of D; groups
    (N,) in `group_col`. The file appears whole or not at all.
    """
    path = os.fspath(path)
    pa, _, pq = _import_pyarrow(path, "writing")
    if layout not in ("nested", "channels"):
        raise ValueError(f"layout must be 'nested' or 'channels', got {layout!r}")
    X = np.asarray(X)
    if X.ndim == 3:
        X = X[:, :, None, :]
    if X.ndim != 4:
        raise UserError(f"{path}: windows must be (N, C, F, T) or (N, C, T), got shape {X.shape}")
    n, c, f, t = X.shape
    window = (c, t) if f == 1 else (c, f, t)
    columns = {}
    if layout == "nested":
        flat = pa.array(np.ascontiguousarray(X, dtype=np.float32).reshape(-1))
        columns[x_col] = _fixed_lists(pa, flat, window)
    else:
        names = list(signal_cols) if signal_cols else [f"ch{i}" for i in range(c)]
        if len(names) != c:
            raise UserError(f"{path}: {len(names)} signal column names for {c} channels")
        for i, name in enumerate(names):
            flat = pa.array(np.ascontiguousarray(X[:, i], dtype=np.float32).reshape(-1))
            columns[name] = _fixed_lists(pa, flat, window[1:])
    for name, ids, what in ((label_col, y, "labels"), (group_col, groups, "group ids")):
        if ids is None:
            continue
        ids = np.asarray(ids)
        if ids.shape[:1] != (n,) or ids.ndim > (2 if what == "labels" else 1):
            raise UserError(f"{path}: expected {n} {what} (one per window), got shape {ids.shape}")
        if name in columns:
            raise UserError(f"{path}: column name '{name}' used twice")
        if what == "labels":
            ids = ids.astype(np.float64 if np.issubdtype(ids.dtype, np.floating) else np.int64)
            columns[name] = (pa.array(ids) if ids.ndim == 1 else
                             pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1)), ids.shape[1]))
        else:
            columns[name] = pa.array(ids)
    table = pa.table(columns)
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
