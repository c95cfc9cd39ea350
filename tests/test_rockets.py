"""Hydra and MultiRocket as their papers describe them: the counts and the pooling operators
against plain loops on tiny series, features that do not depend on the batch, a ridge head that
learns held-out windows, and an export that gives the model's numbers."""
import numpy as np
import pytest
import torch

from biosig.models import MODELS, build_model
from biosig.tasks import Classification
from conftest import run_here

ROCKETS = [name for name in ("hydra", "multirocket", "rockethydra") if name in MODELS]
SMALL = {"hydra": {"k": 4, "g": 8}, "multirocket": {"features": 2688}, "rockethydra": {"features": 2688},
         "minirocket": {"features": 840}}


def build(name, n_elec=3, n_times=64, **kw):
    return build_model({"name": name, "n_elec": n_elec, "n_bands": 1, "n_outputs": 3, "n_times": n_times,
                        "drop": 0.0, **SMALL[name], **kw})


@pytest.mark.parametrize("name", ROCKETS)
@pytest.mark.parametrize("n_elec", [1, 3])
def test_features_are_the_same_whatever_the_batch(name, n_elec):
    x = torch.from_numpy(Classification.example_data(37, n_elec, 1, 64)[0])
    m = build(name, n_elec=n_elec)
    m.fit_data(x)
    m.eval()
    whole = m.transform(x)
    assert whole.abs().sum() > 0
    for batch in (1, 5, 16):
        parts = torch.cat([m.transform(x[s: s + batch]) for s in range(0, len(x), batch)])
        assert torch.equal(parts, whole), batch


@pytest.mark.parametrize("name", ROCKETS)
def test_the_ridge_head_learns_held_out_windows(name):
    """Noisy sinusoids, one class per channel: the solved head scores unseen windows well above chance (1/3)."""
    x, y = (torch.from_numpy(a) for a in Classification.example_data(90, 3, 1, 64, noise=2.0))
    x_new, y_new = (torch.from_numpy(a) for a in Classification.example_data(60, 3, 1, 64, seed=1, noise=2.0))
    m = build(name)
    m.fit_data(x)
    assert m.head_windows(90) and m.fixed_parameters() == []
    targets, weights = Classification(3).least_squares(y)
    solved = m.fit_head(m.head_features(x), targets, weights)
    assert float(m.penalty) == solved["penalty"] > 0 and len(m.fixed_parameters()) == 2
    m.eval()
    assert (m(x_new).argmax(1) == y_new).float().mean() > 0.7
    state = {k: v for k, v in m.state_dict().items() if k != "penalty"}      # a head trained by AdamW
    old = build(name)
    old.load_state_dict(state)
    assert float(old.penalty) == 0 and old.fixed_parameters() == []
    torch.testing.assert_close(old.eval()(x_new), m(x_new))                  # the checkpoint is the transform


def loop_hydra_counts(m, window):
    """Hydra's counts for one window (rows, T), float64, by plain loops over the model's kernels."""
    feats = []
    rows = window.tolist()
    inputs = (rows, [[r[t + 1] - r[t] for t in range(len(r) - 1)] for r in rows])
    for i, d in enumerate(m.dilations):
        for r, series in enumerate(inputs):
            soft, hard = [], []                  # per group, k counts each
            for group in range(m.half):
                summed = [sum(series[c][t] for c in m.rows[i, r, group].tolist()) for t in range(len(series[0]))]
                padded = [0.0] * (4 * d) + summed + [0.0] * (4 * d)
                soft.append([0.0] * m.k)
                hard.append([0.0] * m.k)
                for t in range(len(summed)):
                    outs = [sum(float(m.weight[i, r, group * m.k + kk, 0, j]) * padded[t + j * d] for j in range(9))
                            for kk in range(m.k)]
                    top, low = max(range(m.k), key=outs.__getitem__), min(range(m.k), key=outs.__getitem__)
                    soft[-1][top] += outs[top]
                    hard[-1][low] += 1
            feats += [v for counts in soft for v in counts] + [v for counts in hard for v in counts]
    return torch.tensor(feats, dtype=torch.float64)


def test_hydra_counts_are_a_plain_loop():
    m = build("hydra", n_elec=3, n_times=20, k=3, g=4)
    x = torch.from_numpy(Classification.example_data(4, 3, 1, 20)[0])
    m.fit_data(x)
    assert m.dilations == [1, 2] and m.rows.shape[-1] == 2             # clip(3 // 2, 2, 8) rows per group
    kernels = m.weight.flatten(0, -2)
    torch.testing.assert_close(kernels.sum(-1), torch.zeros(len(kernels)), atol=1e-6, rtol=0)   # centred
    torch.testing.assert_close(kernels.abs().sum(-1), torch.ones(len(kernels)))                  # unit l1
    m.double()
    got = m._features(x[:1].double().flatten(1, 2))[0]
    torch.testing.assert_close(got, loop_hydra_counts(m, x[0].double().flatten(0, 1)), rtol=1e-9, atol=1e-9)
    assert got.numel() == 2 * 2 * 2 * 3 * 2          # dilations x inputs x groups per input x k x (soft, hard)


def test_hydras_sparse_scaler_keeps_a_zero_count_at_zero():
    m = build("hydra")
    x = torch.from_numpy(Classification.example_data(40, 3, 1, 64)[0])
    m.fit_data(x)
    counts = m.transform(x)
    scaled = m.scale(counts)
    assert torch.equal(scaled == 0, counts <= 0)            # a kernel that never won says nothing
    root = counts.clamp_min(0).sqrt()
    torch.testing.assert_close(m.mean, root.mean(0))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minirocket", *ROCKETS])
def test_export_gives_the_models_numbers(name, tmp_path):
    """python -m biosig.export on a trained checkpoint: .pt2 (and .onnx where onnx is installed)
    checked against PyTorch by the exporter itself."""
    x, y = Classification.example_data(48, 3, 1, 64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    kwargs = [f"{k}={v}" for k, v in SMALL[name].items()]
    proc = run_here("train.py", "--x", tmp_path / "X.npy", "--y", tmp_path / "y.npy", "--model", name, "--model-kwargs",
                    *kwargs, "--standardize", "--save", tmp_path / "m.pt", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = ["m.pt2"]
    try:
        import onnx, onnxruntime, onnxscript  # noqa: F401
        outs.append("m.onnx")
    except ImportError:
        pass
    for out in outs:
        proc = run_here("biosig.export", "--ckpt", tmp_path / "m.pt", "--out", tmp_path / out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "max |diff|" in proc.stdout, proc.stdout


def loop_pools(z):
    """PPV, LSPV, MPV, MIPV of one row z (already less its bias) by a plain loop."""
    positives = [t for t, v in enumerate(z) if v > 0]
    longest = stretch = 0
    for v in z:
        stretch = stretch + 1 if v > 0 else 0
        longest = max(longest, stretch)
    mpv = sum(z[t] for t in positives) / len(positives) if positives else 0.0
    mipv = sum(positives) / len(positives) if positives else -1.0
    return [len(positives) / len(z), longest, mpv, mipv]


def test_multirockets_pooling_operators_are_a_plain_loop():
    from biosig.models.multirocket import pool
    gen = torch.Generator().manual_seed(0)
    part = torch.randn(2, 3, 13, generator=gen, dtype=torch.float64)
    part[0, 0] = -1.0                                    # no positive value: MPV 0, MIPV -1, LSPV 0
    part[1, 1, 4:11] = 5.0                               # a long stretch
    bias = torch.randn(3, 2, generator=gen, dtype=torch.float64) * 0.5
    got = pool(part, bias)
    assert got.shape == (2, 3, 2, 4)
    for b in range(2):
        for k in range(3):
            for j in range(2):
                expected = loop_pools((part[b, k] - bias[k, j]).tolist())
                torch.testing.assert_close(got[b, k, j], torch.tensor(expected, dtype=torch.float64))
    assert got[0, 0, :, 1:].tolist() == [[0, 0, -1]] * 2 and got[1, 1, :, 1].min() >= 7


def test_multirocket_takes_the_series_and_its_difference():
    m = build("multirocket", n_times=100)
    assert [d[-1] for d, _ in m.plans] == [12, 12] and m.head[-1].in_features == 2688
    x = torch.from_numpy(Classification.example_data(20, 3, 1, 100)[0])
    m.fit_data(x)
    assert m.biases0.abs().sum() > 0 and m.biases1.abs().sum() > 0 and not torch.equal(m.biases0, m.biases1)
    assert torch.equal(m.std, m.std.clamp_min(1e-3)) and m.input_problem(3, 1, 100) is None
    assert "T >= 10" in build("multirocket", n_times=12).input_problem(3, 1, 9)


def test_the_exported_running_maximum_is_cummax():
    from biosig.models.multirocket import cumulative_max, doubling_max
    v = torch.randint(0, 50, (3, 4, 37), dtype=torch.int32)
    assert torch.equal(doubling_max(v), cumulative_max(v))


def test_hydras_groups_split_evenly_between_the_series_and_its_difference():
    import argparse
    from biosig.models.hydra import even_groups, hydra_dilations
    assert even_groups("64") == 64
    for bad in ("3", "0", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            even_groups(bad)
    assert hydra_dilations(9) == [1] and hydra_dilations(1152) == [1, 2, 4, 8, 16, 32, 64, 128]
