"""Windows as a parquet table: round trips through `python -m biosig.convert`, directories read in
name order, only the needed columns read, and every malformed table refused in one line."""
import sys

import numpy as np
import pytest

import biosig.cli.convert as convert
from biosig.data import parquet
from biosig.errors import UserError
from biosig.data.parquet import is_parquet, read_windows_table, write_windows_table
from conftest import assert_user_error, make_windows, run_here

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def run_convert(*args):
    """python -m biosig.convert ARGS, in-process (tests/test_bad_input.py runs it as a process once)."""
    return run_here("biosig.convert", *args)


def write(path, **columns):
    """A parquet file from python lists, the way pa.array / pandas builds nested columns."""
    pq.write_table(pa.table({name: pa.array(values) if not isinstance(values, pa.Array) else values
                             for name, values in columns.items()}), path)
    return str(path)


def test_cli_round_trip_npy_parquet_npy(tmp_path):
    X, y = make_windows(n=40, c=3, f=2, t=16)
    groups = np.array([f"subject{i % 5}" for i in range(40)])
    np.save(tmp_path / "X.npy", X), np.save(tmp_path / "y.npy", y), np.save(tmp_path / "g.npy", groups)
    proc = run_convert("--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--groups", tmp_path / "g.npy",
                       "--out", tmp_path / "w.parquet", "--group-col", "subject")
    assert proc.returncode == 0, proc.stderr
    assert pq.read_schema(tmp_path / "w.parquet").names == ["x", "label", "subject"]
    proc = run_convert("--x", tmp_path / "w.parquet", "--group-col", "subject", "--out-x", tmp_path / "X2.npy",
                       "--out-y", tmp_path / "y2.npy", "--out-groups", tmp_path / "g2.npy")
    assert proc.returncode == 0, proc.stderr
    X2 = np.load(tmp_path / "X2.npy", allow_pickle=False)
    assert X2.dtype == np.float32 and np.array_equal(X2, X)
    assert np.array_equal(np.load(tmp_path / "y2.npy", allow_pickle=False), y)
    assert np.array_equal(np.load(tmp_path / "g2.npy", allow_pickle=False), groups)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "X2.npy", "g.npy", "g2.npy", "w.parquet",
                                                          "y.npy", "y2.npy"]  # no temp files left


@pytest.mark.parametrize("layout", ["nested", "channels"])
@pytest.mark.parametrize("f", [1, 3])
def test_round_trip_layouts(tmp_path, layout, f):
    X, y = make_windows(n=30, c=4, f=f, t=20)
    np.save(tmp_path / "X.npy", X)
    convert.main(["--x", str(tmp_path / "X.npy"), "--out", str(tmp_path / "w.parquet"), "--layout", layout])
    cols = None if layout == "nested" else "ch0,ch1,ch2,ch3"
    argv = ["--x", str(tmp_path / "w.parquet"), "--out-x", str(tmp_path / "X2.npy")]
    convert.main(argv + (["--signal-cols", cols] if cols else []))
    X2 = np.load(tmp_path / "X2.npy", allow_pickle=False)
    assert X2.dtype == np.float32 and np.array_equal(X2, X)
    X3, y3, g3 = read_windows_table(tmp_path / "w.parquet", signal_cols=cols and cols.split(","), need_labels=False)
    assert np.array_equal(X3, X) and X3.flags.c_contiguous and y3 is None and g3 is None


def test_pandas_style_lists(tmp_path):
    """(C, T) nested python lists (list<list<double>>) read as F = 1; int leaves and per-channel (F, T) work."""
    X, y = make_windows(n=12, c=2, f=1, t=8)
    path = write(tmp_path / "ct.parquet", x=X[:, :, 0].tolist(), label=y.tolist(), subject=[7] * 6 + [9] * 6)
    X2, y2, g2 = read_windows_table(path, group_col="subject")
    assert X2.shape == (12, 2, 1, 8) and np.array_equal(X2, X) and np.array_equal(y2, y)
    assert g2.dtype.kind == "i" and g2.tolist() == [7] * 6 + [9] * 6
    ints = np.arange(12 * 2 * 3 * 4).reshape(12, 2, 3, 4)
    path = write(tmp_path / "ftcols.parquet", a=ints[:, 0].tolist(), b=ints[:, 1].tolist(), label=[0, 1] * 6)
    X3, _, _ = read_windows_table(path, signal_cols=["a", "b"])
    assert X3.dtype == np.float32 and np.array_equal(X3, ints)


def test_directory_reads_files_in_name_order(tmp_path):
    X, y = make_windows(n=30, c=2, f=1, t=8)
    d = tmp_path / "parts"
    d.mkdir()
    for name, rows in (("part-10.parquet", slice(20, 30)), ("part-02.parquet", slice(0, 12)),
                       ("part-05.parquet", slice(12, 20))):
        write_windows_table(d / name, X[rows], y[rows], groups=np.arange(30)[rows], group_col="subject")
    write_windows_table(d / "part-07.parquet", X[:0], y[:0], groups=np.arange(0), group_col="subject")  # empty
    (d / "_SUCCESS").write_text("")
    assert is_parquet(d) and is_parquet(d / "part-02.parquet") and not is_parquet(tmp_path / "X.npy")
    X2, y2, g2 = read_windows_table(d, group_col="subject")
    assert np.array_equal(X2, X) and np.array_equal(y2, y) and np.array_equal(g2, np.arange(30))


def test_reads_only_the_needed_columns(tmp_path, monkeypatch):
    X, y = make_windows(n=10, c=2, f=1, t=8)
    extra = pa.array([["not a number"] * 1000] * 10)  # a heavy column of the wrong type: never touched
    path = write(tmp_path / "w.parquet", notes=extra, x=X[:, :, 0].tolist(), label=y.tolist(), subject=["a"] * 10)
    asked = []
    real_iter = pq.ParquetFile.iter_batches

    def spy(self, *args, columns=None, **kw):
        asked.append(columns)
        return real_iter(self, *args, columns=columns, **kw)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    X2, y2, g2 = read_windows_table(path)
    assert asked == [["x", "label"]] and np.array_equal(X2, X) and g2 is None


def test_streams_in_batches_and_counts_rows_per_file(tmp_path, monkeypatch):
    """Read in many small batches (as a large file would be): same array; errors give the row in the file."""
    monkeypatch.setattr(parquet, "BATCH_BYTES", 200)
    X, y = make_windows(n=50, c=2, f=1, t=8)
    write_windows_table(tmp_path / "a.parquet", X[:20], y[:20], layout="channels")
    write_windows_table(tmp_path / "b.parquet", X[20:], y[20:], layout="channels")
    X2, y2, _ = read_windows_table(tmp_path, signal_cols=["ch0", "ch1"])
    assert np.array_equal(X2, X) and np.array_equal(y2, y)
    rows = X[20:, :, 0].tolist()
    rows[27][1] = rows[27][1][:5]
    write(tmp_path / "b.parquet", x=rows, label=y[20:].tolist())
    write(tmp_path / "a.parquet", x=X[:20, :, 0].tolist(), label=y[:20].tolist())
    with pytest.raises(UserError, match=r"b.parquet: column 'x' row 27 has 5 frames \(T\), expected 8"):
        read_windows_table(tmp_path)


def ragged_t():
    return [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]] * 3 + [[[1.0, 2.0, 3.0], [4.0, 5.0]]]


@pytest.mark.parametrize("columns, kwargs, needles", [
    ({"x": [[[1.0, 2.0]] * 2] * 4 + [[[1.0, 2.0]] * 3], "label": [0] * 5}, {}, ["column 'x'", "row 4", "3 channels"]),
    ({"x": ragged_t(), "label": [0] * 4}, {}, ["column 'x'", "row 3", "2 frames", "expected 3"]),
    ({"x": [[[1.0, 2.0]] * 2] * 2 + [[[1.0, None]] * 2], "label": [0] * 3}, {}, ["column 'x'", "row 2", "null"]),
    ({"x": [[[1.0, 2.0]] * 2, None, [[1.0, 2.0]] * 2], "label": [0] * 3}, {}, ["column 'x'", "row 1", "null"]),
    ({"x": [[[1.0, 2.0]] * 2] * 3, "label": [0, None, 1]}, {}, ["column 'label'", "row 1", "null"]),
    ({"x": [[[1.0, 2.0]] * 2] * 3, "label": [0.0, 1.5, 1.0]}, {}, ["column 'label'", "row 1", "integers"]),
    ({"x": [[[1.0, 2.0]] * 2] * 3, "label": ["a", "b", "a"]}, {}, ["column 'label'", "string", "integers"]),
    ({"x": [[["a", "b"]] * 2] * 3, "label": [0] * 3}, {}, ["column 'x'", "not numbers"]),
    ({"x": [[1.0, 2.0]] * 3, "label": [0] * 3}, {}, ["column 'x'", "(C, T) or (C, F, T)"]),
    ({"x": [[[1.0, float("nan")]] * 2] * 3, "label": [0] * 3}, {}, ["row 0", "NaN"]),
    ({"x": pa.array([[[], []]] * 3, pa.list_(pa.list_(pa.float64()))), "label": [0] * 3}, {},
     ["column 'x'", "row 0", "0 frames", "empty"]),
    ({"signal": [[[1.0, 2.0]] * 2] * 3, "y": [0] * 3}, {}, ["no column 'x'", "columns: signal, y"]),
    ({"x": [[[1.0, 2.0]] * 2] * 3}, {}, ["no column 'label'", "columns: x"]),
    ({"x": [[[1.0, 2.0]] * 2] * 3, "label": [0] * 3}, {"group_col": "subject"}, ["no column 'subject'"]),
    ({"ch1": [[1.0, 2.0]] * 3, "ch2": [[1.0, 2.0]] * 2 + [[1.0]], "label": [0] * 3},
     {"signal_cols": ["ch1", "ch2"]}, ["column 'ch2'", "row 2", "1 frames", "expected 2"]),
    ({"ch1": [[1.0, 2.0]] * 3, "ch2": [[[1.0, 2.0]]] * 3, "label": [0] * 3},
     {"signal_cols": ["ch1", "ch2"]}, ["column 'ch2'", "column 'ch1'", "nesting"]),
    ({"x": pa.array([], pa.list_(pa.list_(pa.float32()))), "label": pa.array([], pa.int64())}, {}, ["no rows"]),
])
def test_malformed_tables_are_refused(tmp_path, columns, kwargs, needles):
    path = write(tmp_path / "bad.parquet", **columns)
    with pytest.raises(UserError) as err:
        read_windows_table(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message and message.startswith(path)
    for needle in needles:
        assert needle in message, (needle, message)


def test_not_parquet_missing_and_empty_directory(tmp_path):
    (tmp_path / "fake.parquet").write_text("x,label\n1,0\n")
    (tmp_path / "empty_dir").mkdir()
    for name, needle in (("fake.parquet", "fake.parquet: not a readable parquet file"),
                         ("missing.parquet", "missing.parquet: file not found"),
                         ("empty_dir", "empty_dir: directory holds no \\*.parquet files")):
        with pytest.raises(UserError, match=needle):
            read_windows_table(tmp_path / name)


def test_labels_optional_for_inference(tmp_path):
    path = write(tmp_path / "w.parquet", x=[[[1.0, 2.0]] * 2] * 3, label=[1.0, 0.0, 2.0])  # float labels, integral
    X, y, _ = read_windows_table(path, need_labels=False)
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 2]  # present: still read, e.g. to score predictions
    path = write(tmp_path / "unlabelled.parquet", x=[[[1.0, 2.0]] * 2] * 3)
    X, y, _ = read_windows_table(path, need_labels=False)
    assert X.shape == (3, 2, 1, 2) and y is None


def test_cli_bad_table_exits_2_and_writes_nothing(tmp_path):
    path = write(tmp_path / "bad.parquet", x=ragged_t(), label=[0] * 4)
    proc = run_convert("--x", path, "--out-x", tmp_path / "X.npy", "--out-y", tmp_path / "y.npy")
    assert_user_error(proc, "bad.parquet", "column 'x'", "row 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_cli_refuses_flags_of_the_other_direction(tmp_path):
    X, _ = make_windows(n=4)
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(UserError, match="--out-x is for reading a parquet table"):
        convert.main(["--x", str(tmp_path / "X.npy"), "--out-x", str(tmp_path / "X2.npy")])
    with pytest.raises(UserError, match="--signal-cols names 2 columns but .* has 3 channels"):
        convert.main(["--x", str(tmp_path / "X.npy"), "--out", str(tmp_path / "w.parquet"), "--layout", "channels",
                      "--signal-cols", "a,b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]


def test_without_pyarrow_the_message_says_how_to_install(tmp_path, monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow` now raises ImportError
    with pytest.raises(UserError, match=r"w.parquet: reading parquet needs pyarrow: pip install pyarrow"):
        read_windows_table(tmp_path / "w.parquet")
    with pytest.raises(UserError, match="writing parquet needs pyarrow"):
        write_windows_table(tmp_path / "w.parquet", np.zeros((2, 1, 1, 4), np.float32))


def test_infer_reads_signal_cols_in_another_order_by_name(tmp_path, capsys):
    """Named channels are the same channels: `--signal-cols Pz,Fz,Cz` for a model of Fz,Cz,Pz was
    refused while .npy windows named in another order are reordered; now both are read in the
    checkpoint's order (the same predictions), and a selection without one of them is refused."""
    from biosig.cli.infer import main as infer
    from biosig.cli.train import main as train
    from conftest import FAST, main_fails, run_main
    X, y = make_windows(n=60)
    write_windows_table(tmp_path / "w.parquet", X, y, layout="channels", signal_cols=["Fz", "Cz", "Pz"])
    code, _, err = run_main(train, ["--x", tmp_path / "w.parquet", "--signal-cols", "Fz,Cz,Pz", "--save",
                                    tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--epochs", "1", "--no-report",
                                    *FAST], capsys)
    assert code == 0, err
    scored = {}
    for name, cols in (("same", []), ("other", ["--signal-cols", "Pz,Fz,Cz"])):
        code, out, err = run_main(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", *cols,
                                          "--quiet", "--out", tmp_path / f"{name}.csv"], capsys)
        assert code == 0 and "warning" not in err, err
        scored[name] = (tmp_path / f"{name}.csv").read_text()
    assert scored["other"] == scored["same"]
    main_fails(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", "--signal-cols", "Pz,Cz",
                       "--out", tmp_path / "p.csv"], capsys, "w.parquet --signal-cols Pz,Cz", "no channel Fz",
               "Fz,Cz,Pz")
    assert not (tmp_path / "p.csv").exists()
    # names in another case are the table's columns (Pz, Fz, Cz), read as it spells them
    code, _, err = run_main(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", "--signal-cols",
                                    "pz,fz,cz", "--quiet", "--out", tmp_path / "case.csv"], capsys)
    assert code == 0, err
    assert err.strip() == f"warning: {tmp_path / 'w.parquet'}: --signal-cols matched its columns ignoring case: " \
                          f"pz as Pz, fz as Fz, cz as Cz"
    assert (tmp_path / "case.csv").read_text() == scored["same"]


def test_infer_on_parquet_reads_the_sampling_rate_beside_it(tmp_path, capsys):
    """biosig.convert writes the windows' description beside the table; infer.py reads its rate as
    train.py does: windows at the model's rate are scored, at another rate refused in one line,
    as .npy windows are (the table's columns stay read by the checkpoint's channel names)."""
    import json
    from biosig.cli.infer import main as infer
    from biosig.cli.train import main as train
    from conftest import FAST, main_fails, run_main
    X, y = make_windows(n=60)
    np.save(tmp_path / "X.npy", X), np.save(tmp_path / "y.npy", y)
    spec = {"fs": 128.0, "channels": ["Fz", "Cz", "Pz"]}
    (tmp_path / "X.signal.json").write_text(json.dumps(spec))
    code, _, err = run_main(train, ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--save", tmp_path / "m.pt",
                                    "--run-dir", tmp_path / "run", "--epochs", "1", "--no-report", *FAST], capsys)
    assert code == 0, err
    assert run_convert("--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--layout", "channels",
                       "--out", tmp_path / "w.parquet").returncode == 0
    code, _, err = run_main(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", "--quiet",
                                    "--out", tmp_path / "p.csv"], capsys)
    assert code == 0 and "not checked" not in err, err
    (tmp_path / "w.signal.json").write_text(json.dumps({**spec, "fs": 256.0}))
    main_fails(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", "--out", tmp_path / "q.csv"],
               capsys, "w.parquet", "256 Hz", "128 Hz")
    main_fails(infer, ["--ckpt", tmp_path / "m.pt", "--x", tmp_path / "w.parquet", "--fs", "128", "--out",
                       tmp_path / "q.csv"], capsys, "--fs 128", "w.signal.json (256)")
    assert not (tmp_path / "q.csv").exists()
