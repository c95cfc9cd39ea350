"""MiniRocket as the paper fits it: the ridge head against brute force, its leave-one-out errors
against explicit refits, and a transform whose features do not depend on the batch."""
import pytest
import torch

from biosig.models import build_model
from biosig.models.ridge import fit_ridge
from biosig.tasks import Classification, Regression


def brute_ridge(x, y, w, lam):
    """Weighted ridge with an unpenalized intercept by the normal equations: (bias (K,), weight (K, D))."""
    a = torch.cat([torch.ones(len(x), 1, dtype=x.dtype), x], 1)
    penalty = lam * torch.eye(a.shape[1], dtype=x.dtype)
    penalty[0, 0] = 0
    beta = torch.linalg.solve(a.T @ (w[:, None] * a) + penalty, a.T @ (w[:, None] * y))
    return beta[0], beta[1:].T


@pytest.mark.parametrize("n, d", [(14, 30), (40, 6)])      # the Gram matrix's way, the covariance's way
def test_the_ridge_head_is_brute_force_at_each_penalty_and_its_loo_is_refits(n, d):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(n, generator=gen, dtype=torch.float64) + 0.5          # class weights, in effect
    for lam in (0.1, 1.0, 30.0):
        solved = fit_ridge(x, y, w, penalties=(lam,))
        bias, weight = brute_ridge(x, y, w, lam)
        torch.testing.assert_close(solved["weight"], weight, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(solved["bias"], bias, rtol=1e-9, atol=1e-10)
        # leave-one-out: refit without window i, score window i
        errors = []
        for i in range(n):
            keep = torch.arange(n) != i
            b, v = brute_ridge(x[keep], y[keep], w[keep], lam)
            errors.append(w[i] * ((y[i] - (b + v @ x[i])) ** 2).sum())
        assert float(solved["loo"][0]) == pytest.approx(float(sum(errors) / w.sum()), rel=1e-8)
    # over a grid, the penalty kept is the one with the least leave-one-out error
    grid = fit_ridge(x, y, w, penalties=(0.1, 1.0, 30.0))
    assert grid["penalty"] == (0.1, 1.0, 30.0)[int(grid["loo"].argmin())]


def test_the_tasks_least_squares_targets():
    y, weights = Classification(3, class_weights=[0.5, 2.0, 1.0]).least_squares(torch.tensor([0, 2, 1]))
    assert y.tolist() == [[1, -1, -1], [-1, -1, 1], [-1, 1, -1]]       # one-vs-rest, +1 / -1
    assert weights.tolist() == [0.5, 1.0, 2.0]
    assert Classification(2).least_squares(torch.tensor([0, 1]))[1] is None
    task = Regression(1, vector=False, mean=[10.0], std=[2.0])
    assert task.least_squares(torch.tensor([12.0, 8.0]))[0].flatten().tolist() == [1.0, -1.0]


def minirocket(features=840, n_elec=3, **kw):
    torch.manual_seed(0)
    return build_model({"name": "minirocket", "n_elec": n_elec, "n_bands": 1, "n_outputs": 3, "n_times": 64,
                        "drop": 0.0, "features": features, **kw})


@pytest.mark.parametrize("n_elec", [1, 5])
def test_the_phase_convolution_is_the_dilated_kernels(n_elec):
    """Each kernel's sum of its rows, convolved phase by phase (models/minirocket.py), is the
    dilated kernel's zero-padded convolution of that sum, at every dilation."""
    from torch.nn import functional as F
    m = minirocket(n_elec=n_elec)
    m.fit_data(torch.from_numpy(Classification.example_data(8, n_elec, 1, 64)[0]))
    z = torch.randn(4, n_elec, 64, dtype=torch.float64)
    m.double()
    for i, d in enumerate(m.dilations):
        out, _ = m._convolve(z, i)
        mixed = torch.einsum("kc,bct->bkt", m.channels[i], z)                          # (B, 84, T)
        expected = F.conv1d(mixed, m.weight, padding=4 * d, dilation=d, groups=84)
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_elec", [1, 3, 12])
def test_features_are_the_same_whatever_the_batch(n_elec):
    x, _ = Classification.example_data(37, n_elec, 1, 64)
    x = torch.from_numpy(x)
    m = minirocket(n_elec=n_elec)
    m.fit_data(x)
    m.eval()
    whole = m.transform(x)
    for batch in (1, 5, 16):
        parts = torch.cat([m.transform(x[s: s + batch]) for s in range(0, len(x), batch)])
        assert torch.equal(parts, whole), batch


def test_the_head_is_solved_and_an_old_checkpoint_without_it_still_loads():
    x, y = Classification.example_data(60, 3, 1, 64)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    m = minirocket()
    m.fit_data(x)
    assert m.head_windows(60) and m.fixed_parameters() == []
    targets, weights = Classification(3).least_squares(y)
    solved = m.fit_head(m.head_features(x), targets, weights)
    assert float(m.penalty) == solved["penalty"] > 0 and len(m.fixed_parameters()) == 2
    m.eval()
    assert (m(x).argmax(1) == y).float().mean() > 0.9            # the training windows, linearly separable
    state = {k: v for k, v in m.state_dict().items() if k != "penalty"}    # as biosig wrote it before the ridge
    old = minirocket()
    old.load_state_dict(state)
    assert float(old.penalty) == 0 and old.fixed_parameters() == []
    assert not minirocket(head="adamw").head_windows(10)
