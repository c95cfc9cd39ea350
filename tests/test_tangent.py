"""The Riemannian tangent-space model: its features against pyriemann's, its reference point against
the mean's defining equation, and a class that lives only in the channels' correlation learned
through train.py."""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch

from biosig.models import build_model
from biosig.models.tangent import covariances, riemann_mean, spectral
from conftest import main_fails, run_main


def spd_windows(n=20, c=2, f=2, t=64, seed=0):
    """(n, c, f, t) float64 windows whose c x f rows are random mixtures of independent sources of
    unequal power, so that the covariances differ in scale and shape."""
    rng = np.random.default_rng(seed)
    rows = c * f
    sources = rng.normal(size=(n, rows, t)) * rng.uniform(0.3, 3.0, size=(n, rows, 1))
    mixed = np.einsum("nij,njt->nit", rng.normal(size=(n, rows, rows)), sources) + rng.normal(size=(n, rows, 1))
    return mixed.reshape(n, c, f, t)


def tangent_model(c=2, f=2, **kw):
    return build_model({"name": "tangent", "n_elec": c, "n_bands": f, "n_outputs": 2, "drop": 0.0, **kw})


def test_the_features_are_pyriemanns_tangent_space():
    """Covariances(estimator="oas") + TangentSpace(metric="riemann") fitted on the same windows:
    the same tangent vectors (upper triangle, off-diagonal times sqrt 2) within 1e-6."""
    pytest.importorskip("pyriemann")
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    x = spd_windows()
    rows = x.reshape(len(x), -1, x.shape[-1])                  # the model's rows: C x F, channel-major
    covs = Covariances(estimator="oas").fit_transform(rows)
    expected = TangentSpace(metric="riemann").fit(covs).transform(covs)
    model = tangent_model()
    model.fit_data(torch.from_numpy(x))
    got = model.tangent(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape == (20, 10)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert np.abs(expected).max() > 0.5                        # far from the reference: a real comparison
    # in float32, as the run feeds it: the same within float32's precision
    np.testing.assert_allclose(model.tangent(torch.from_numpy(x).float()).numpy(), expected, atol=1e-4, rtol=0)
    # OAS shrinks: its covariance is not the sample covariance; estimator=none is the sample covariance
    sample = np.stack([np.cov(r, bias=True) for r in rows])
    np.testing.assert_allclose(covariances(torch.from_numpy(rows)).numpy(), covs, atol=1e-12, rtol=0)
    np.testing.assert_allclose(covariances(torch.from_numpy(rows), "none").numpy(), sample, atol=1e-12, rtol=0)
    assert np.abs(covs - sample).max() > 1e-3


def test_the_reference_is_the_riemannian_mean():
    """At the mean P the tangent vectors of the windows sum to zero (the gradient of the summed
    squared distances); for two matrices it is their geodesic midpoint, A^1/2 (A^-1/2 B A^-1/2)^1/2 A^1/2;
    and the features are affine-invariant: mixing the rows leaves them as they are."""
    x = torch.from_numpy(spd_windows(n=30, seed=1)).flatten(1, 2)
    covs = covariances(x)
    p, inv_root, steps = riemann_mean(covs)
    assert 1 < steps < 50
    torch.testing.assert_close(inv_root @ p @ inv_root, torch.eye(4, dtype=torch.float64))
    logs = spectral(inv_root @ covs @ inv_root, torch.log)
    assert logs.sum(0).abs().max() < 1e-8 and logs.abs().max() > 0.5
    a, b = covs[0], covs[1]
    root, inv = spectral(a, torch.sqrt), spectral(a, torch.rsqrt)
    midpoint = root @ spectral(inv @ b @ inv, torch.sqrt) @ root
    torch.testing.assert_close(riemann_mean(covs[:2])[0], midpoint, rtol=1e-8, atol=1e-10)
    # with estimator=none (OAS is not affine-invariant) a fixed mixing of the rows changes nothing
    model, mixed_model = tangent_model(estimator="none"), tangent_model(estimator="none")
    mixing = torch.from_numpy(np.random.default_rng(2).normal(size=(4, 4)))
    x4 = x.reshape(-1, 2, 2, x.shape[-1])
    mixed = torch.einsum("ij,njt->nit", mixing, x).reshape(x4.shape)
    model.fit_data(x4)
    mixed_model.fit_data(mixed)
    # the tangent vectors differ by a rotation of the tangent space: their norms (the distances to P) agree
    torch.testing.assert_close(model.tangent(x4).norm(dim=1), mixed_model.tangent(mixed).norm(dim=1))


def test_the_mean_is_fitted_on_a_seeded_sample_of_many_windows(monkeypatch):
    """Beyond MEAN_WINDOWS training windows the reference is the mean of a sample drawn by the seed
    (the same seed, the same reference); the features' statistics still see every window."""
    from biosig.models import tangent
    monkeypatch.setattr(tangent, "MEAN_WINDOWS", 10)
    x = torch.from_numpy(spd_windows(n=30, seed=3))
    covs = covariances(x.flatten(1, 2))
    fitted = []
    for seed in (0, 0, 1):
        model = tangent_model()
        model.fit_data(x, seed=seed)
        fitted.append(model)
    torch.testing.assert_close(fitted[0].reference, fitted[1].reference, rtol=0, atol=0)
    assert not torch.allclose(fitted[0].reference, fitted[2].reference)
    pick = torch.randperm(30, generator=torch.Generator().manual_seed(0))[:10].sort().values
    torch.testing.assert_close(fitted[0].reference, riemann_mean(covs[pick])[0])
    assert not torch.allclose(fitted[0].reference, riemann_mean(covs)[0])
    feats = fitted[0].tangent(x)
    torch.testing.assert_close(fitted[0].mean, feats.mean(0).float())


def correlated_windows(n, c=4, t=64, seed=0):
    """(X (n, c, 1, t) float32, y (n,)): class 1 correlates channels 0 and 1 (0.7), class 0 does not;
    every channel has unit variance in both, and each window a random gain."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, c, t))
    x[y == 1, 1] = 0.7 * x[y == 1, 0] + np.sqrt(1 - 0.7 ** 2) * x[y == 1, 1]
    x *= np.exp(rng.normal(0, 0.5, size=(n, 1, 1)))
    return x[:, :, None].astype(np.float32), y


def test_it_learns_a_class_that_lives_in_the_correlation_and_exports(tmp_path, capsys):
    from biosig.cli.train import main as train
    X, y = correlated_windows(200)
    X_test, y_test = correlated_windows(200, seed=1)
    for name, array in (("X", X), ("y", y), ("X_test", X_test), ("y_test", y_test)):
        np.save(tmp_path / f"{name}.npy", array)
    argv = ["--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--x-test", tmp_path / "X_test.npy",
            "--y-test", tmp_path / "y_test.npy", "--model", "tangent", "--save", tmp_path / "m.pt",
            "--run-dir", tmp_path / "run", "--no-report"]
    code, out, err = run_main(train, argv, capsys)
    assert code == 0, err[-3000:]
    assert "head: solved on" in out + err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["acc"] > 0.85, summary["test"]      # chance: 0.5
    state = torch.load(tmp_path / "m.pt", weights_only=True)["model_state"]
    assert int(state["solver"]) == 2 and float(state["penalty"]) > 0 and state["reference"].dtype == torch.float64
    # exported as a torch.export program it predicts what infer.py's Predictor predicts; ONNX has no
    # eigendecomposition: refused in one line, nothing written
    from biosig.cli.export import main as export
    from biosig.deploy.predictor import load_model_from_checkpoint
    code, _, err = run_main(export, ["--ckpt", tmp_path / "m.pt", "--out", tmp_path / "m.pt2"], capsys)
    assert code == 0, err[-3000:]
    expected = load_model_from_checkpoint(str(tmp_path / "m.pt")).predict(X_test[:7])["values"]
    got = torch.export.load(str(tmp_path / "m.pt2")).module()(torch.from_numpy(X_test[:7])).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        main_fails(export, ["--ckpt", tmp_path / "m.pt", "--out", tmp_path / "m.onnx"], capsys, "--out .onnx",
                   "eigendecomposition", ".pt2")
        assert not [p for p in os.listdir(tmp_path) if "onnx" in p]


def class_data(n=60, d=5, k=3, seed=0):
    """(x (n, d) float64, y (n,)): k classes shifted along the first feature, overlapping (the
    penalty matters: no class is separable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d))
    x[:, 0] += y
    return x, y


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("c", [0.1, 1.0, 10.0])
def test_the_logistic_head_is_sklearns(k, c):
    """fit_logistic at C: scikit-learn's LogisticRegression(C) coefficients (the binary model for
    2 classes, the multinomial for more), intercepts (up to the constant a softmax ignores) and
    predicted probabilities, within 1e-5."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    from biosig.models.logistic import fit_logistic
    x, y = class_data(k=k, seed=k)
    ref = sklearn.LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(x, y)
    got = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), k, c=c)
    weight, bias = got["weight"].numpy(), got["bias"].numpy()
    assert weight.shape == (k, 5) and bias.shape == (k,) and got["grad"] < 1e-6
    if k == 2:      # sklearn's single logit is the difference of ours
        weight, bias, ref_w, ref_b = weight[1:] - weight[:1], bias[1:] - bias[:1], ref.coef_, ref.intercept_
    else:
        bias, ref_w, ref_b = bias - bias.mean(), ref.coef_, ref.intercept_ - ref.intercept_.mean()
    np.testing.assert_allclose(weight, ref_w, atol=1e-5, rtol=0)
    np.testing.assert_allclose(bias, ref_b, atol=1e-5, rtol=0)
    assert np.abs(ref_w).max() > 0.1                      # a real comparison, not two zeros
    probs = torch.softmax(torch.from_numpy(x) @ got["weight"].T + got["bias"], 1).numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(x), atol=1e-5, rtol=0)
    # deterministic: the same solve twice is the same head, bit for bit
    again = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), k, c=c)
    assert torch.equal(again["weight"], got["weight"]) and torch.equal(again["bias"], got["bias"])


def test_a_window_weight_of_two_is_a_duplicated_window():
    """Window weights (class weights) enter the loss: weighting windows 2 is fitting them twice,
    and the weighted head differs from the unweighted one."""
    from biosig.models.logistic import fit_logistic
    x, y = class_data(n=40, seed=3)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.ones(40, dtype=torch.float64)
    w[:10] = 2
    weighted = fit_logistic(x, y, 3, w)
    duplicated = fit_logistic(torch.cat([x, x[:10]]), torch.cat([y, y[:10]]), 3)
    torch.testing.assert_close(weighted["weight"], duplicated["weight"], atol=1e-6, rtol=0)
    torch.testing.assert_close(weighted["bias"], duplicated["bias"], atol=1e-6, rtol=0)
    assert (weighted["weight"] - fit_logistic(x, y, 3)["weight"]).abs().max() > 1e-3


def test_the_head_is_logistic_for_classes_and_ridge_otherwise():
    """fit_head with the task's one-vs-rest +-1 targets solves the logistic head on the tangent
    vectors as they are (pyriemann's TangentSpace + scikit-learn's LogisticRegression, C=1: the
    same probabilities), with real targets the ridge; the `solver` buffer says which and the
    epochs leave either fixed; head=logistic on real targets is a one-line user error."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    from biosig.errors import UserError
    from biosig.models.ridge import fit_ridge
    x = torch.from_numpy(spd_windows(n=40, seed=5))
    model = tangent_model()
    model.fit_data(x)
    feats, raw = model.head_features(x), model.tangent(x).numpy()
    y = (raw[:, 0] + 0.5 * raw[:, 3] + np.random.default_rng(5).normal(0, 1.0, 40) > np.median(raw[:, 0])).astype(int)
    ovr = -torch.ones(40, 2, dtype=torch.float64)
    ovr[torch.arange(40), torch.from_numpy(y)] = 1
    assert model.fixed_parameters() == [] and int(model.solver) == 0
    solved = model.fit_head(feats, ovr)
    assert solved["solver"] == "logistic" and int(model.solver) == 2 and len(model.fixed_parameters()) == 2
    ref = sklearn.LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(raw, y)
    model.eval()
    probs = torch.softmax(model(x.float()).double(), 1).detach().numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(raw), atol=1e-4, rtol=0)
    assert 0.1 < probs[:, 1].std()                             # not a flat answer
    real = torch.from_numpy(raw[:, :2] @ np.array([[1.0, 0.5], [-0.3, 2.0]]))
    solved = model.fit_head(feats, real)
    assert solved["solver"] == "ridge" and int(model.solver) == 1 and len(model.fixed_parameters()) == 2
    torch.testing.assert_close(model.head[-1].bias.double(), fit_ridge(feats, real)["bias"], atol=1e-5, rtol=0)
    forced, ridge = tangent_model(head="logistic"), tangent_model(head="ridge")
    with pytest.raises(UserError, match="head=logistic"):
        forced.fit_head(feats, real)
    assert ridge.fit_head(feats, ovr)["solver"] == "ridge"
