"""Cross-validation folds in train.py, the split ledger in the checkpoint, and infer.py's group check."""
import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, run_here
from biosig.data import fold_split
from biosig.cli.examples import subjects

EEGNET = ["--model", "eegnet", "--epochs", "2", "--batch", "32"]


def test_folds_partition_windows_stratified_and_by_group():
    y = np.repeat([0, 1, 2], [50, 31, 19])
    rng = np.random.default_rng(0)
    rng.shuffle(y)
    groups = np.repeat(np.arange(10), 10)
    for method, grp in (("stratified", None), ("random", None), ("group", groups)):
        held = [fold_split(y, 100, 5, i, None, 0, grp, method)[1] for i in range(5)]
        joined = np.concatenate(held)
        assert sorted(joined.tolist()) == list(range(100))          # every window held out exactly once
        for i, val in enumerate(held):
            train = fold_split(y, 100, 5, i, None, 0, grp, method)[0]
            assert not set(train) & set(val) and len(train) + len(val) == 100
            if method == "stratified":      # each class within one window of an even share
                for c in range(3):
                    assert abs(np.sum(y[val] == c) - np.sum(y == c) / 5) < 1
            if method == "group":           # no group on both sides
                assert not set(groups[train]) & set(groups[val])
    # a test fold and a validation fold, the rest trains; the same folds for any run seed
    tr, va, te = fold_split(y, 100, 5, 1, 3, 0, groups, "group", seed=1)
    assert len(set(tr) | set(va) | set(te)) == 100 and not set(va) & set(te)
    assert np.array_equal(te, fold_split(y, 100, 5, None, 3, 0, groups, "group", seed=7)[2])
    # leave-one-subject-out: K = the number of groups, one group per fold
    assert all(len(set(groups[fold_split(y, 100, 10, i, None, 0, groups, "group")[1]])) == 1 for i in range(10))


@pytest.fixture
def subj(tmp_path):
    for name, array in subjects(n_subjects=6, per_subject=30).items():
        np.save(tmp_path / f"{name}.npy", array)
    return tmp_path


def test_test_fold_ledger_and_infer_group_check(subj):
    d = subj
    proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "groups.npy", "--split", "group",
                    "--folds", "6", "--fold", "1", "--test-fold", "0", *EEGNET, "--save", d / "m.pt", "--run-dir", d / "r")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((d / "r" / "summary.json").read_text())
    split = summary["split"]
    assert split["folds"] == {"k": 6, "fold": 1, "test_fold": 0, "seed": 0, "by": "group"}
    assert (split["train"]["groups"], split["val"]["groups"], split["test"]["groups"]) == (4, 1, 1)
    assert "acc" in summary["test"] and "test fold 0 of 6" in proc.stdout
    ledger = torch.load(d / "m.pt", weights_only=True)["ledger"]
    assert ledger["train"]["windows"] == 120 and ledger["train"]["counts"] == [30] * 4
    assert ledger["val"]["ids"] == [str(g) for g in split["val"]["group_ids"]]

    X, y, g = (np.load(d / f"{n}.npy") for n in ("X", "y", "groups"))
    test_group = split["test"]["group_ids"][0]
    np.save(d / "Xt.npy", X[g == test_group])
    np.save(d / "gt.npy", g[g == test_group])
    clean = run_here("infer.py", "--ckpt", d / "m.pt", "--x", d / "Xt.npy", "--groups", d / "gt.npy", "--quiet",
                     "--strict-groups", "--report", d / "clean.json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads((d / "clean.json").read_text())["leaky"] is False

    leaky = run_here("infer.py", "--ckpt", d / "m.pt", "--x", d / "X.npy", "--y", d / "y.npy", "--groups",
                     d / "groups.npy", "--quiet", "--out", d / "p.csv", "--report", d / "rep.json")
    assert leaky.returncode == 0, leaky.stderr
    assert "LEAKY: of the 180 scored windows, 120 from 4 group(s) it trained on and 30 from 1" in leaky.stdout
    report = json.loads((d / "rep.json").read_text())
    assert report["leaky"] is True and report["groups"]["train_windows"] == 120
    rows = (d / "p.csv").read_text().splitlines()
    seen = [r.split(",")[-1] for r in rows[1:]]
    assert rows[0].endswith(",seen") and seen.count("train") == 120 and seen.count("val") == 30

    refused = run_here("infer.py", "--ckpt", d / "m.pt", "--x", d / "X.npy", "--groups", d / "groups.npy",
                       "--strict-groups", "--out", d / "q.csv")
    assert_user_error(refused, "groups.npy: refused (--strict-groups): of the 180 scored windows, 120 from 4 group(s) "
                      "it trained on")
    assert not (d / "q.csv").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--folds", "5"], "--folds 5 needs --fold I"),
    (["--fold", "1"], "--fold needs --folds K"),
    (["--folds", "5", "--fold", "5"], "--fold 5: folds are numbered 0..4"),
    (["--folds", "5", "--fold", "2", "--test-fold", "2"], "the validation and test folds must differ"),
    (["--folds", "9", "--fold", "0", "--split", "group"], "6 group(s) cannot make 9 cross-validation folds"),
    (["--folds", "1", "--fold", "0"], "--folds: 1 is out of range"),
    (["--folds", "100", "--fold", "0"], "--folds 100 on 180 windows leaves fewer than 2 windows in a fold"),
    (["--fold-seed", "3"], "--fold-seed seeds the --folds assignment"),
])
def test_bad_fold_options(subj, flags, needle):
    d = subj
    proc = run_here("train.py", "--x", d / "X.npy", "--y", d / "y.npy", "--groups", d / "groups.npy", *flags, *EEGNET,
                    "--save", d / "m.pt", "--run-dir", d / "r")
    assert_user_error(proc, needle)
    assert not (d / "r").exists() and not (d / "m.pt").exists()


def test_many_groups_are_recorded_as_hashes_and_still_checked():
    from biosig.data import ledger
    groups = np.repeat([f"s{i:04d}" for i in range(1500)], 2)
    entry = ledger.make(groups, np.arange(2200), np.arange(2200, 3000))      # 1100 groups train, 400 validate
    assert "ids" not in entry["train"] and entry["train"]["hashes"].shape == (1100,)
    assert entry["train"]["windows"] == 2200 and int(entry["train"]["counts"].sum()) == 2200
    assert len(entry["val"]["ids"]) == 400
    result = ledger.check(entry, np.array(["s0003", "s1200", "new01"]))
    assert list(result["seen"]) == ["train", "val", ""] and result["leaky"]
    assert not ledger.check(entry, np.array(["new01", "new02"]))["leaky"]


def test_loso_counts_the_groups_of_a_parquet_group_column(tmp_path):
    pytest.importorskip("pyarrow")
    from argparse import Namespace
    from biosig.data.parquet import write_windows_table
    from biosig.sweep.cv import count_groups
    data = subjects(n_subjects=5, per_subject=6)
    write_windows_table(tmp_path / "w.parquet", data["X"], data["y"], data["groups"], group_col="subject")
    assert count_groups(Namespace(groups=None, group_col="subject", x=str(tmp_path / "w.parquet"))) == 5
    np.save(tmp_path / "g.npy", data["groups"])
    assert count_groups(Namespace(groups=str(tmp_path / "g.npy"), group_col=None, x=None)) == 5
