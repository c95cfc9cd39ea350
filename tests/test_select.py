"""--model auto's costs (biosig/select.py): closed-form candidates scored from one transform, the
gradient candidate raced, the selection drawn from a bounded, stratified sample."""
import json

import numpy as np
import pytest
import torch

from biosig.training import distributed, auto as select
from biosig import normalize
from biosig.cli.train import main as train
from biosig.data import kfold_indices
from biosig.training.batches import Windows
from biosig.training.loop import evaluate
from biosig.models import build_model
from biosig.tasks import Classification
from conftest import run_main


def test_closed_form_fold_scores_equal_an_explicit_refit_per_fold():
    """One transform, the head solved per fold on its training features: each fold's score is the
    one the run's own path gives (the head fitted on the fold's training windows, the held-out fold
    evaluated), with class weights."""
    from biosig.training.options import train_parser
    from biosig.training.build import fit_head_to_data, fit_to_data
    X, y = Classification.example_data(66, 3, 1, 40, noise=2.5, seed=4)
    y[:12] = 0                                                    # imbalanced: the weights matter
    counts = np.bincount(y, minlength=3)
    task = Classification(3, class_weights=[float(len(y) / (3 * c)) for c in counts])
    args = train_parser().parse_args(["--x", "X.npy", "--y", "y.npy", "--save", "m.pt", "--seed", "3"])
    idx = np.arange(len(y))
    folds = kfold_indices(y, select.FOLDS, seed=3)
    config = {"name": "minirocket", "n_elec": 3, "n_bands": 1, "n_outputs": 3, "n_times": 40, "features": 168}
    device, alone = torch.device("cpu"), distributed.Context(alone=True)
    fast = select.closed_form(build_model(config), args, task, Windows(X, y, idx), folds, "acc", device)

    spec = normalize.fitted_spec(X, idx, args.normalize, args.standardize)
    explicit = []
    for tr, held in folds:
        model = build_model(config)
        fit_to_data(model, Windows(X, y, idx), spec, args.seed)         # the same unsupervised fit
        solved = fit_head_to_data(model, task, Windows(X, y, tr), spec, alone, device)
        assert solved is not None
        model.eval()
        explicit.append(evaluate(model, task, Windows(X, y, held), 32, device=device, amp="off",
                                 preprocess_spec=spec, ctx=alone)["acc"])
    assert fast == pytest.approx(explicit, abs=1e-12)
    assert np.mean(fast) > 0.5 and len(set(fast)) > 1               # real signal, and folds that differ


def test_the_sample_is_stratified_capped_and_seeded():
    strata = np.repeat([0, 1, 2], [600, 300, 4])
    pick = select.stratified_sample(strata, 90, seed=1)
    assert len(pick) == 90 and len(np.unique(pick)) == 90 and np.all(np.diff(pick) > 0)
    # the rare class at least FOLDS (so every fold can hold it), the others in proportion (largest remainders)
    assert np.bincount(strata[pick]).tolist() == [57, 30, 3]
    assert np.array_equal(pick, select.stratified_sample(strata, 90, seed=1))
    assert not np.array_equal(pick, select.stratified_sample(strata, 90, seed=2))


def test_race_stops_only_a_candidate_the_folds_left_cannot_save():
    # 72 windows, 24 a fold: after one fold the rest can move the mean by ~0.17 at most
    assert select.race([0.30], [24], 72, bar=0.95) == "behind"
    assert select.race([0.85], [24], 72, bar=0.95) is None             # it can still catch up
    assert select.race([0.85, 0.90], [24, 24], 72, bar=0.95) is None
    assert select.race([0.80, 0.78], [24, 24], 72, bar=0.95) == "behind"
    assert select.race([0.95], [24], 72, bar=0.50) == "ahead"
    assert select.race([0.30, 0.30, 0.30], [24, 24, 24], 72, bar=0.95) is None   # nothing left to save


def _data(tmp_path, n=72, noise=0.3):
    tmp_path.mkdir(parents=True, exist_ok=True)
    X, y = Classification.example_data(n, 3, 1, 48, noise=noise)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--no-report", "--save", tmp_path / "m.pt",
            "--run-dir", tmp_path / "run"]


@pytest.mark.parametrize("eegnet, folds_run", [([0.3, 0.3, 0.3], 1), ([0.95, 1.0, 1.0], 3)])
def test_the_gradient_candidate_stops_when_it_cannot_catch_up(tmp_path, capsys, monkeypatch, eegnet, folds_run):
    """MiniRocket (closed form) sets the bar on easy data; a candidate whose first fold is hopeless
    is stopped there, one that can still catch up runs every fold."""
    calls = []

    def scored(cand, task, X, y, tr, held, *rest):
        calls.append(len(held))
        return {"acc": eegnet[len(calls) - 1]}

    monkeypatch.setattr(select, "gradient_fold", scored)
    code, out, err = run_main(train, _data(tmp_path), capsys)
    assert code == 0, err[-2000:]
    sel = json.loads((tmp_path / "run" / "summary.json").read_text())["selection"]
    assert sel["closed_form"] == [m for m in select.CANDIDATES if m != "eegnet"]
    assert len(sel["scores"]["minirocket"]) == select.FOLDS
    assert np.mean(sel["scores"]["minirocket"]) > 0.95
    assert len(calls) == folds_run and sel["scores"]["eegnet"] == eegnet[:folds_run]
    assert sel["chosen"] == "minirocket"
    if folds_run == 1:
        assert sel["stopped"]["eegnet"]["verdict"] == "behind" and "stopped: below the best mean" in out
    else:
        assert sel["stopped"] == {}
    assert set(sel["seconds"]) == set(select.CANDIDATES) and sel["seconds_total"] >= sum(sel["seconds"].values())
    assert sel["training_s"] > 0


def test_selection_samples_a_bounded_stratified_share_and_says_so(tmp_path, capsys, monkeypatch):
    """Past SELECT_WINDOWS (or SELECT_BYTES, or an epoch of --limit-train-batches) the candidates
    are cross-validated on a stratified sample; the winner still trains on every window."""
    seen = []

    def scored(cand, task, X, y, tr, held, *rest):
        seen.append(np.bincount(y[np.concatenate([tr, held])], minlength=3).tolist())
        return {"acc": 0.0}

    caps = {name: getattr(select, name) for name in ("SELECT_WINDOWS", "SELECT_BYTES", "GRADIENT_BYTE_EPOCHS")}
    monkeypatch.setattr(select, "gradient_fold", scored)
    monkeypatch.setattr(select, "SELECT_WINDOWS", 30)
    data = _data(tmp_path, n=90)
    code, out, err = run_main(train, data, capsys)
    assert code == 0, err[-2000:]
    assert "auto: selecting on 30 of 90 training windows (stratified)" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["selection"]["sample"] == {"windows": 30, "of": 90, "how": "stratified"}
    assert seen[0] == [10, 10, 10]                                     # 30 of 30 / 30 / 30
    assert summary["split"]["train"]["windows"] == 90                 # the winner trains on all

    monkeypatch.setattr(select, "SELECT_WINDOWS", caps["SELECT_WINDOWS"])
    monkeypatch.setattr(select, "SELECT_BYTES", 45 * 3 * 48 * 4)      # 45 windows' bytes
    code, out, err = run_main(train, _data(tmp_path / "b", n=90), capsys)
    assert code == 0 and "auto: selecting on 45 of 90 training windows (stratified)" in out, err[-2000:]

    # bytes x epochs of the gradient candidate: 36 windows at EEGNet's 100 epochs, 72 at --epochs 50
    monkeypatch.setattr(select, "SELECT_BYTES", caps["SELECT_BYTES"])
    monkeypatch.setattr(select, "GRADIENT_BYTE_EPOCHS", 36 * 100 * 3 * 48 * 4)
    code, out, err = run_main(train, _data(tmp_path / "d", n=90), capsys)
    assert code == 0 and "auto: selecting on 36 of 90 training windows (stratified)" in out, err[-2000:]
    code, out, err = run_main(train, _data(tmp_path / "e", n=90) + ["--epochs", "50"], capsys)
    assert code == 0 and "auto: selecting on 72 of 90 training windows (stratified)" in out, err[-2000:]

    # --split group: the sample keeps every group, in proportion, and the folds keep them whole
    np.save(tmp_path / "g.npy", np.arange(90) % 6)
    grouped = []

    def folds(strata, k, seed, groups=None, **kw):
        grouped.append(groups)
        return kfold_indices(strata, k, seed, groups=groups, **kw)

    monkeypatch.setattr(select, "kfold_indices", folds)
    code, out, err = run_main(train, _data(tmp_path / "f", n=90) + ["--split", "group", "--groups", tmp_path / "g.npy"],
                              capsys)
    assert code == 0 and "auto: selecting on 36 of 90 training windows (stratified by group)" in out, err[-2000:]
    assert np.bincount(grouped[-1]).tolist() == [6] * 6

    monkeypatch.setattr(select, "GRADIENT_BYTE_EPOCHS", caps["GRADIENT_BYTE_EPOCHS"])
    # an epoch of 2 batches of 8 is what a fold trains on: 16 windows, 24 with the held-out fold
    code, out, err = run_main(train, _data(tmp_path / "c", n=90) + ["--limit-train-batches", "2", "--batch", "8"],
                              capsys)
    assert code == 0 and "auto: selecting on 24 of 90 training windows (stratified)" in out, err[-2000:]


def test_auto_with_a_validation_split_scores_the_right_windows(tmp_path, capsys, monkeypatch):
    """With windows held out for validation the training windows are a subset of X: each
    closed-form candidate's fold scores still come from the folds' own windows (real signal: well
    above chance), where they once indexed past the features."""
    monkeypatch.setattr(select, "gradient_fold", lambda *a, **k: {"acc": 0.3})
    code, out, err = run_main(train, [*_data(tmp_path, n=96), "--val-split", "0.25"], capsys)
    assert code == 0, err[-2000:]
    sel = json.loads((tmp_path / "run" / "summary.json").read_text())["selection"]
    assert sel["sample"] == {"windows": 72, "of": 72, "how": "all"}
    assert np.mean(sel["scores"]["minirocket"]) > 0.8 and sel["chosen"] == "minirocket"


@pytest.mark.parametrize("frames, chosen, left_out", [(20, "minirocket", ["eegnet"]),
                                                      (5, "tangent", ["minirocket", "eegnet"])])
def test_auto_leaves_out_a_candidate_the_windows_are_too_short_for(tmp_path, capsys, frames, chosen, left_out):
    """EEGNet needs 32 frames and MiniRocket 9: shorter windows leave them out, said in the log, and
    the selection goes on with what can take them (alone: no cross-validation)."""
    X, y = Classification.example_data(48, 3, 1, frames, noise=0.3)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, out, err = run_main(train, ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--no-report",
                                      "--epochs", "1", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run"],
                              capsys)
    assert code == 0, err[-2000:]
    for name in left_out:
        assert f"auto: {name} left out (T={frames} frames is too short" in out
    sel = json.loads((tmp_path / "run" / "summary.json").read_text())["selection"]
    assert sel["chosen"] == chosen and not set(left_out) & set(sel["candidates"])
