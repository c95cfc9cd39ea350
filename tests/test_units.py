"""The package's pieces checked against brute force: metrics, splits, batching, accumulation."""
import itertools
import os

import numpy as np
import pytest
import torch
from torch import nn

from biosig.training import loop
from biosig import normalize
from biosig.data import split_indices
from biosig.training.batches import Windows, epoch_batches, shard_range
from biosig.training import distributed
from biosig.training.distributed import Context
from biosig.errors import UserError
from biosig.tasks.metrics import classification_report
from biosig.tasks import Classification


def brute_auroc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_classification_report_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k, n = 4, 60
    y = rng.integers(0, k, n)
    probs = rng.random((n, k)).round(1)                      # rounding makes ties
    probs[np.arange(n), y] += rng.random(n) * 0.6            # some signal
    probs /= probs.sum(1, keepdims=True)
    rep = classification_report(probs, y, k)
    pred = probs.argmax(1)
    assert rep["acc"] == pytest.approx(np.mean(pred == y))
    f1s, recalls = [], []
    for c in range(k):
        tp = np.sum((pred == c) & (y == c))
        prec = tp / max(1, np.sum(pred == c))
        rec = tp / max(1, np.sum(y == c))
        f1s.append(0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
        recalls.append(rec)
        assert rep["per_class"]["precision"][c] == pytest.approx(prec)
        assert rep["confusion"][c] == [int(np.sum((y == c) & (pred == j))) for j in range(k)]
    assert rep["f1"] == pytest.approx(np.mean(f1s))
    assert rep["balanced_acc"] == pytest.approx(np.mean(recalls))
    assert rep["auroc"] == pytest.approx(np.mean([brute_auroc(probs[:, c], y == c) for c in range(k)]))


def test_splits():
    y = np.repeat(np.arange(3), [30, 60, 90])
    groups = np.repeat(np.arange(18), 10)
    tr, va = split_indices(y, 0.2, seed=0, method="stratified")
    assert np.bincount(y[va]).tolist() == [6, 12, 18]
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    tr, va = split_indices(y, 0.25, seed=4, method="group", groups=groups)
    assert not set(groups[tr]) & set(groups[va])
    tr2, va2 = split_indices(y, 0.25, seed=4, method="group", groups=groups)
    assert np.array_equal(va, va2)                            # deterministic for a seed
    assert not np.array_equal(va, split_indices(y, 0.25, seed=5, method="group", groups=groups)[1])
    with pytest.raises(UserError, match="group"):
        split_indices(y, 0.2, 0, "group", groups=np.zeros(len(y)))


@pytest.mark.parametrize("n, batch, world", [(100, 32, 1), (100, 32, 2), (101, 8, 3), (5, 4, 2)])
def test_epoch_batches_shard_every_global_batch(n, batch, world):
    per_rank = [epoch_batches(n, batch, seed=1, epoch=3, shuffle=True, rank=r, world=world) for r in range(world)]
    single, sizes = epoch_batches(n, batch, seed=1, epoch=3, shuffle=True)
    assert all(len(b) == len(per_rank[0][0]) for b, _ in per_rank)   # same step count on every rank
    for step, (global_batch, size) in enumerate(zip(single, sizes)):
        if size < world:
            continue
        shards = np.concatenate([per_rank[r][0][step] for r in range(world)])
        assert sorted(shards) == sorted(global_batch)                  # disjoint, complete
    assert not np.array_equal(np.concatenate(single), np.concatenate(
        epoch_batches(n, batch, seed=1, epoch=4, shuffle=True)[0]))   # reshuffled per epoch
    covered = list(itertools.chain.from_iterable(range(*shard_range(n, r, world)) for r in range(world)))
    assert covered == list(range(n))


class Flat(nn.Module):
    """A model with no BatchNorm or dropout, so batch splitting cannot change its gradients."""

    def __init__(self, c, f, t, k):
        super().__init__()
        self.config = {"n_outputs": k}
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * f * t, 16), nn.Tanh(), nn.Linear(16, k))

    def forward(self, x):
        return self.net(x)


def train_epoch(X, y, batch, accum):
    torch.manual_seed(0)
    model = Flat(*X.shape[1:], 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    windows = Windows(X, y, np.arange(len(X)))
    batches, sizes = epoch_batches(len(X), batch, seed=0, epoch=1, shuffle=True)
    stats = loop.train_one_epoch(model, Classification(3), windows, batches, sizes, opt, None,
                                 device=torch.device("cpu"), amp="off", preprocess_spec=normalize.make_spec(),
                                 clip=0.0, accum=accum, ctx=Context())
    return model, stats


def test_gradient_accumulation_equals_the_bigger_batch():
    from conftest import make_windows
    X, y = make_windows(n=128, t=8)
    big, s1 = train_epoch(X, y, batch=32, accum=1)
    acc, s2 = train_epoch(X, y, batch=8, accum=4)
    for a, b in zip(big.parameters(), acc.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert s1["train_loss"] == pytest.approx(s2["train_loss"], rel=1e-5)
    one, _ = train_epoch(X, y, batch=8, accum=1)                          # and it is not a no-op
    assert not torch.allclose(next(one.parameters()), next(big.parameters()))


def test_standardize_and_zscore_spec():
    # the per-window z-score: every window and electrode gets mean 0, std 1 over (F, T)
    x = torch.randn(4, 2, 3, 10) * 7 + 2
    spec = normalize.make_spec(normalize=True)
    z = normalize.apply(x, spec)
    torch.testing.assert_close(z.mean(dim=(2, 3)), torch.zeros(4, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(2, 3), unbiased=False), torch.ones(4, 2), atol=1e-4, rtol=0)
    # --standardize: statistics per (channel, band) from the given windows only, computed in chunks
    rng = np.random.default_rng(0)
    scale, offset = rng.uniform(0.5, 20, (1, 2, 3, 1)), rng.uniform(-50, 50, (1, 2, 3, 1))
    X = (rng.normal(size=(64, 2, 3, 10)) * scale + offset).astype(np.float32)
    X[32:] += 1000                                    # windows outside the training split must not count
    train = np.arange(32)
    mean, std = normalize.channel_stats(X, train, chunk_bytes=X[0].nbytes * 5)
    np.testing.assert_allclose(mean, X[train].mean(axis=(0, 3)), rtol=1e-5)
    np.testing.assert_allclose(std, X[train].std(axis=(0, 3)), rtol=1e-4)
    s = normalize.apply(torch.from_numpy(X[train]), normalize.make_spec(mean=mean, std=std))
    torch.testing.assert_close(s.mean(dim=(0, 3)), torch.zeros(2, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(s.std(dim=(0, 3), unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)
    # both: standardize first, then z-score each window (F, T) per electrode
    both = normalize.apply(torch.from_numpy(X[train]), normalize.make_spec(normalize=True, mean=mean, std=std))
    torch.testing.assert_close(both, normalize.apply(s, spec), atol=1e-4, rtol=0)
    assert not torch.allclose(both, normalize.apply(torch.from_numpy(X[train]), spec), atol=1e-2)


class ManualBatchNorm(nn.BatchNorm2d):
    """Training-mode BatchNorm written with elementwise ops: autograd gets its gradient right."""

    def forward(self, x):
        mu = x.mean((0, 2, 3), keepdim=True)
        var = x.var((0, 2, 3), unbiased=False, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def test_eeg2arm_gradients_are_right_for_raw_time():
    """Guards a PyTorch CPU bug: BatchNorm2d's backward returns wrong input gradients when the
    incoming gradient is channels-last-strided (what a permute to frames after the stem gave)."""
    from biosig.models import build_model
    cfg = {"name": "eeg2arm", "n_elec": 3, "n_bands": 1, "n_outputs": 3, "frame_embed": 16, "n_heads": 2,
           "n_layers": 1, "drop": 0.0}
    torch.manual_seed(0)
    native = build_model(cfg)
    manual = build_model(cfg)
    manual.load_state_dict(native.state_dict())
    for i, layer in enumerate(manual.stem):
        if isinstance(layer, nn.BatchNorm2d):
            repl = ManualBatchNorm(layer.num_features, eps=layer.eps)
            repl.load_state_dict(layer.state_dict())
            manual.stem[i] = repl
    x, y = torch.randn(32, 3, 1, 32), torch.randint(0, 3, (32,))
    for m in (native, manual):
        nn.functional.cross_entropy(m.train()(x), y).backward()
    for (name, a), b in zip(native.named_parameters(), manual.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_eeg2arm_transformer_is_torchs_layer_with_a_last_frame_shortcut():
    """EEG2Arm's own encoder (fused causal attention, cheaper dropout, a last-frame-only final
    layer) computes what nn.TransformerEncoder (pre-norm, GELU, no bias) computed before it:
    the same weights from the same seed, the same outputs and gradients."""
    from biosig.models.eeg2arm import CausalEncoder
    dim, heads, layers = 32, 4, 3
    torch.manual_seed(7)
    ref_layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, 0.0, activation="gelu", batch_first=True,
                                           norm_first=True, bias=False)
    ref = nn.TransformerEncoder(ref_layer, layers, enable_nested_tensor=False)
    torch.manual_seed(7)
    ours = CausalEncoder(dim, heads, layers, 0.0)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    h = torch.randn(5, 12, dim, requires_grad=True)
    mask = nn.Transformer.generate_square_subsequent_mask(12)
    want = ref(h, mask=mask, is_causal=True)
    got = ours(h)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours(h, last_only=True), want[:, -1:], rtol=1e-5, atol=1e-5)
    (g_want,) = torch.autograd.grad(want[:, -1].square().sum(), h)
    (g_got,) = torch.autograd.grad(ours(h, last_only=True).square().sum(), h)
    torch.testing.assert_close(g_got, g_want, rtol=1e-4, atol=1e-5)


def test_eeg2arm_dropout_drops_the_asked_share_and_keeps_the_mean():
    from biosig.models.eeg2arm import dropout
    x = torch.ones(200_000)
    out = dropout(x, 0.25, training=True)
    assert abs(float((out == 0).float().mean()) - 0.25) < 0.01
    assert abs(float(out.mean()) - 1.0) < 0.02 and torch.equal(out.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert dropout(x, 0.25, training=False) is x


@pytest.mark.parametrize("t, flags, pool", [(64, [], 2), (256, [], 2), (257, [], 3), (1152, [], 9),
                                            (1152, ["--cnn-time-pool", "4"], 4)])
def test_eeg2arm_pools_long_windows_to_at_most_128_frames_unless_told(t, flags, pool):
    from biosig.models import build_model
    from biosig.training.options import train_parser
    from biosig.training.build import model_config
    args = train_parser().parse_args(["--x", "X.npy", "--y", "y.npy", "--model", "eeg2arm", *flags])
    config = model_config(args, (10, 3, 1, t), 2)
    assert config["cnn_time_pool"] == pool
    model = build_model(config)
    assert model.forward_seq(torch.randn(2, 3, 1, t)).shape[1] == t // pool


def test_minirocket_reuses_training_features_exactly_and_forgets_them_with_new_buffers(monkeypatch):
    from biosig.models import build_model, rocket_head
    torch.manual_seed(0)
    m = build_model({"name": "minirocket", "n_elec": 3, "n_bands": 1, "n_outputs": 2, "n_times": 64,
                     "features": 840})
    x = torch.randn(20, 3, 1, 64)
    m.fit_data(x)
    assert len(m._cache) == 20                      # fit_data computed the first epoch's features
    m.eval()
    fresh = m.transform(x)
    m.train()
    assert torch.equal(m.transform(x), fresh)       # from the cache
    shifted = x + 0.5                               # an augmented window is another key
    got = m.transform(shifted)
    m.eval()
    assert torch.equal(got, m.transform(shifted)) and not torch.equal(got, fresh)
    m.train()
    assert len(m._cache) == 40
    monkeypatch.setattr(rocket_head, "CACHE_BYTES", m._cache_bytes)      # full: nothing more is kept
    m.transform(x * 2)
    assert len(m._cache) == 40
    m.load_state_dict(m.state_dict())
    assert len(m._cache) == 0 and m._cache_bytes == 0


@pytest.mark.parametrize("y_kind", ["labels", "frames", "none"])
def test_device_windows_serve_exactly_the_batches_windows_serve(y_kind):
    """What a GPU run reads from GPU memory (here on the CPU: the same code) is what Windows reads."""
    from biosig.training.batches import DeviceWindows
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3, 2, 8)).astype(np.float32)
    y = {"labels": rng.integers(0, 3, 50), "frames": rng.integers(0, 3, (50, 8)), "none": None}[y_kind]
    indices = rng.permutation(50)[:37]
    host = Windows(X, y, indices)
    device = DeviceWindows(host, "cpu", chunk_bytes=1000)       # several chunks
    assert len(device) == len(host) == 37
    for positions in (np.arange(37), rng.permutation(37)[:10], np.array([5])):
        for a, b in zip(host.read(positions), device.read(positions)):
            assert torch.equal(a, b)


def test_a_missing_optional_package_is_named_in_one_form_that_installs_the_right_thing():
    """Every 'needs X: pip install X' names PyPI's own packages: `biosig[extra]` would install PyPI's
    `biosig`, another project."""
    import re
    from biosig.errors import needs
    assert str(needs("--tracker mlflow", "mlflow-skinny", "sqlalchemy")) == \
        "--tracker mlflow needs mlflow-skinny, sqlalchemy: pip install mlflow-skinny sqlalchemy"
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "biosig")
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                assert not re.search(r"pip install ['\"]?biosig\[", text), name


def test_joining_a_cuda_group_pins_the_local_device(monkeypatch):
    """init('cuda') under torchrun sets this rank's GPU before joining the group (CI has no GPU:
    the two calls are recorded, not made). A function-local `import torch.distributed.nn` once
    made torch unbound there, so every multi-GPU run died before its first step."""
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("set_device", i)))
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda backend, **kw: calls.append((backend, kw["rank"], kw["world_size"])))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = distributed.init("cuda")
    assert calls == [("set_device", 1), ("nccl", 3, 4)]
    assert (ctx.rank, ctx.world, ctx.local_rank) == (3, 4, 1)
