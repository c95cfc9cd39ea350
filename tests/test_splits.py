"""Parquet windows through train.py/infer.py, leakage-safe splits, train-split standardization."""
import json

import numpy as np
import pytest
import torch

from conftest import FAST, assert_user_error, make_windows, run_here

pytest.importorskip("pyarrow")
from biosig.data.parquet import write_windows_table  # noqa: E402


@pytest.fixture
def subjects(tmp_path):
    """240 windows from 12 subjects (20 each), 3 classes; as .npy and as parquet in both layouts."""
    X, y = make_windows(n=240, c=3, f=2, t=32)
    groups = np.repeat(np.arange(12), 20)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "g.npy", groups)
    write_windows_table(tmp_path / "nested.parquet", X, y, groups, group_col="subject")
    write_windows_table(tmp_path / "channels.parquet", X, y, groups, group_col="subject", layout="channels",
                        signal_cols=["fz", "cz", "pz"])
    return tmp_path, X, y, groups


def train(d, name, *args):
    proc = run_here("train.py", *args, "--save", d / f"{name}.pt", "--run-dir", d / name, "--epochs", "2",
                    "--deterministic", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, torch.load(d / f"{name}.pt", weights_only=True), json.loads((d / name / "summary.json").read_text())


def test_npy_and_both_parquet_layouts_train_identically(subjects):
    d, X, y, groups = subjects
    _, a, sa = train(d, "npy", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "g.npy", "--split", "group")
    _, b, sb = train(d, "nested", "--x", d / "nested.parquet", "--group-col", "subject", "--split", "group")
    _, c, sc = train(d, "chan", "--x", d / "channels.parquet", "--signal-cols", "fz,cz,pz", "--y", "label",
                     "--group-col", "subject", "--split", "group")
    for other in (b, c):
        assert all(torch.equal(a["model_state"][k], other["model_state"][k]) for k in a["model_state"])
    assert sa["split"] == sb["split"] == sc["split"]
    # parquet inference: labels in the table are scored by themselves
    inf = run_here("infer.py", "--ckpt", d / "nested.pt", "--x", d / "channels.parquet", "--signal-cols", "fz,cz,pz",
                   "--quiet")
    assert inf.returncode == 0, inf.stderr
    assert "accuracy=" in inf.stdout and "(n=240)" in inf.stdout


def test_group_split_is_subject_independent_and_deterministic(subjects):
    d, X, y, groups = subjects
    proc, _, s = train(d, "g1", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "g.npy",
                       "--split", "group", "--val-split", "0.25")
    split = s["split"]
    assert split["method"] == "group"
    assert split["train"]["groups"] == 9 and split["val"]["groups"] == 3          # 12 subjects, none on both sides
    assert split["train"]["windows"] == 180 and split["val"]["windows"] == 60
    assert sum(split["val"]["class_counts"]) == 60
    assert "groups 9 / 3" in proc.stdout
    _, _, again = train(d, "g2", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "g.npy",
                        "--split", "group", "--val-split", "0.25")
    assert again["split"] == split and again["best_metrics"] == s["best_metrics"]
    # which subjects went to validation: reproduce the split and check no overlap
    from biosig.data import split_indices
    tr, va = split_indices(y, 0.25, 1337, "group", groups)
    assert not set(groups[tr]) & set(groups[va])
    assert split["val"]["group_ids"] == sorted(set(groups[va].tolist()))      # listed, not only counted
    assert np.bincount(y[va], minlength=3).tolist() == split["val"]["class_counts"]


def test_standardize_uses_training_split_only(tmp_path):
    X, y = make_windows(n=200, c=2, f=1, t=16)
    groups = np.repeat(np.arange(10), 20)
    from biosig.data import split_indices
    tr, va = split_indices(y, 0.2, 1337, "group", groups)
    X[va] += 100.0                        # validation subjects sit far away: any leak shows in the mean
    X[:, 1] *= 5.0
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "g.npy", groups)
    _, ck, _ = train(tmp_path, "std", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--groups",
                     tmp_path / "g.npy", "--split", "group", "--standardize")
    mean, std = np.array(ck["preprocess"]["mean"]), np.array(ck["preprocess"]["std"])
    assert mean.shape == (2, 1)
    np.testing.assert_allclose(mean[:, 0], X[tr].mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std[:, 0], X[tr].std(axis=(0, 2, 3)), rtol=1e-4)
    # infer.py applies them by itself: the Python API and the CLI agree with a manual standardization
    from biosig.deploy.predictor import load_model_from_checkpoint
    p = load_model_from_checkpoint(str(tmp_path / "std.pt"))
    manual = (torch.from_numpy(X[:8]) - torch.tensor(mean)[None, :, :, None].float()) / \
        (torch.tensor(std)[None, :, :, None].float() + 1e-6)
    with torch.no_grad():
        expected = p.model(manual).numpy()
    np.testing.assert_allclose(p.predict(X[:8], softmax=False)["values"], expected, rtol=1e-4, atol=1e-5)


def test_the_checkpoint_remembers_its_channels_and_window_length(subjects):
    """A model trained on fz,cz,pz must not run on cz,pz (a channel missing); by default infer.py
    reads the checkpoint's channels (--signal-cols in another order are read in its order, see
    test_parquet.py); another T is allowed with one warning."""
    d, X, y, groups = subjects
    _, ckpt, _ = train(d, "chan", "--x", d / "channels.parquet", "--signal-cols", "fz,cz,pz")
    assert ckpt["channels"] == ["fz", "cz", "pz"] and ckpt["example_input_shape"][-1] == 32
    proc = run_here("infer.py", "--ckpt", d / "chan.pt", "--x", d / "channels.parquet", "--signal-cols", "cz,pz",
                    "--out", d / "p.csv")
    assert_user_error(proc, "channels.parquet", "cz,pz", "no channel fz", "fz,cz,pz")
    assert not (d / "p.csv").exists()
    inf = run_here("infer.py", "--ckpt", d / "chan.pt", "--x", d / "channels.parquet", "--quiet")
    assert inf.returncode == 0 and "(n=240)" in inf.stdout, inf.stderr
    assert "warning" not in inf.stderr
    np.save(d / "short.npy", X[:, :, :, :24])
    inf = run_here("infer.py", "--ckpt", d / "chan.pt", "--x", d / "short.npy", "--quiet")
    warnings = [line for line in inf.stderr.splitlines() if line.strip()]
    assert inf.returncode == 0 and len(warnings) == 2, inf.stderr
    # .npy windows name no channels: their order cannot be checked against the checkpoint's (signal contract)
    assert warnings[0].startswith("warning:") and "channel names and order unknown" in warnings[0]
    assert warnings[1].startswith("warning:") and "T=24" in warnings[1] and "T=32" in warnings[1]
    inf = run_here("infer.py", "--ckpt", d / "chan.pt", "--x", d / "short.npy", "--channel-names", "fz,cz,pz", "--quiet")
    assert [line for line in inf.stderr.splitlines() if line.strip()] == warnings[1:], inf.stderr


def test_explicit_validation_and_test_files(subjects):
    d, X, y, groups = subjects
    np.save(d / "Xv.npy", X[:40])
    np.save(d / "yv.npy", y[:40])
    write_windows_table(d / "test.parquet", X[40:100], y[40:100])
    proc, _, s = train(d, "ex", "--x", d / "X.npy", "--y", d / "y.npy", "--x-val", d / "Xv.npy", "--y-val",
                       d / "yv.npy", "--x-test", d / "test.parquet")
    assert s["split"]["method"] == "explicit"
    assert s["split"]["train"]["windows"] == 240 and s["split"]["val"]["windows"] == 40
    assert s["test"]["per_class"]["support"] and sum(s["test"]["per_class"]["support"]) == 60
    assert 0.0 <= s["test"]["acc"] <= 1.0 and "test (" in proc.stdout
    # the reported test accuracy is the best checkpoint's, as infer.py computes it
    inf = run_here("infer.py", "--ckpt", d / "ex.pt", "--x", d / "test.parquet", "--quiet")
    assert float(inf.stdout.split("accuracy=")[1].split()[0]) == pytest.approx(s["test"]["acc"], abs=1e-4)


def test_bad_tables_through_the_cli(subjects, tmp_path):
    d, X, y, groups = subjects
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [np.zeros((3, 8)).tolist()] * 3 + [np.zeros((3, 7)).tolist()]
    pq.write_table(pa.table({"x": rows, "label": [0, 1, 0, 1]}), tmp_path / "ragged.parquet")
    proc = run_here("train.py", "--x", tmp_path / "ragged.parquet", "--save", tmp_path / "m.pt", *FAST)
    assert_user_error(proc, "ragged.parquet", "'x'", "row 3")
    proc = run_here("train.py", "--x", d / "nested.parquet", "--label-col", "activity", "--save", tmp_path / "m.pt")
    assert_user_error(proc, "nested.parquet", "activity")
    proc = run_here("train.py", "--x", d / "nested.parquet", "--split", "group", "--save", tmp_path / "m.pt")
    assert_user_error(proc, "--split group", "--group-col")
    proc = run_here("infer.py", "--ckpt", d / "nothing.pt", "--x", tmp_path / "ragged.parquet")
    assert_user_error(proc, "nothing.pt")
    assert not (tmp_path / "m.pt").exists()
