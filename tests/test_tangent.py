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
    assert "head: solved in closed form" in out + err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["acc"] > 0.85, summary["test"]      # chance: 0.5
    state = torch.load(tmp_path / "m.pt", weights_only=True)["model_state"]
    assert float(state["penalty"]) > 0 and state["reference"].dtype == torch.float64
    # exported as a torch.export program it predicts what infer.py's Predictor predicts; ONNX has no
    # eigendecomposition: refused in one line, nothing written
    from biosig.export import main as export
    from biosig.inference import load_model_from_checkpoint
    code, _, err = run_main(export, ["--ckpt", tmp_path / "m.pt", "--out", tmp_path / "m.pt2"], capsys)
    assert code == 0, err[-3000:]
    expected = load_model_from_checkpoint(str(tmp_path / "m.pt")).predict(X_test[:7])["values"]
    got = torch.export.load(str(tmp_path / "m.pt2")).module()(torch.from_numpy(X_test[:7])).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxscript"):
        main_fails(export, ["--ckpt", tmp_path / "m.pt", "--out", tmp_path / "m.onnx"], capsys, "--out .onnx",
                   "eigendecomposition", ".pt2")
        assert not [p for p in os.listdir(tmp_path) if "onnx" in p]
