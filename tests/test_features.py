"""The Model contract's features and head (biosig/models/__init__.py): for every registered model,
head(features(x)) is forward(x) exactly, features(x) is (B, n_features), and for per-frame models
head(features_seq(x)) is forward_seq(x) -- what fusion and other models build on as an embedding.

A new model is tested by being registered: nothing here names one, except the small options that
keep a default-sized model (10,000 random kernels, 6 inception modules) quick to build, and tcn's
tolerance: its forward is forward_seq's last frame, the head's 1x1 convolution run over all T frames,
which sums in another order than over one frame (TCN.forward), so head(features(x)) is within 1e-6."""
import pytest
import torch

from biosig.models import MODELS as REGISTERED, build_model

# models of one input; the fusion models (several inputs) are tested in tests/test_fusion.py
MODELS = {n: m for n, m in REGISTERED.items() if not getattr(m, "multi_input", False)}

C, F, T, K, B = 3, 2, 64, 4, 5
SMALL = {"minirocket": {"features": 168}, "multirocket": {"features": 168}, "hydra": {"g": 4, "k": 2},
         "rockethydra": {"features": 168, "g": 4, "k": 2}, "eeg2arm": {"frame_embed": 16},
         "inception": {"depth": 3, "filters": 4}, "shallow": {"filters": 8, "kernel": 9, "pool": 16, "stride": 8}}
WITHIN = {"tcn": 1e-6}          # not bit for bit, and why: the docstring


def small_model(name):
    """The model built for (C, F, T) windows, its statistics fitted where it has fit_data, in eval mode."""
    torch.manual_seed(0)
    config = {"name": name, "n_elec": C, "n_bands": F, "n_outputs": K, "drop": 0.1, **SMALL.get(name, {})}
    if getattr(MODELS[name], "fixed_frames", False):
        config["n_times"] = T
    model = build_model(config)
    if hasattr(model, "fit_data"):
        model.fit_data(torch.randn(20, C, F, T), seed=0)
    return model.eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_head_of_the_features_is_the_forward(name):
    model = small_model(name)
    x = torch.randn(B, C, F, T)
    with torch.no_grad():
        features = model.features(x)
        assert features.shape == (B, model.n_features) and features.dtype == torch.float32
        if name in WITHIN:
            torch.testing.assert_close(model.head(features), model(x), rtol=0, atol=WITHIN[name])
        else:
            assert torch.equal(model.head(features), model(x)), name


@pytest.mark.parametrize("name", sorted(m for m in MODELS if MODELS[m].per_frame))
def test_the_head_of_each_frame_s_features_is_forward_seq(name):
    model = small_model(name)
    x = torch.randn(B, C, F, T)
    with torch.no_grad():
        frames = model.features_seq(x)
        logits = model.forward_seq(x)
        assert frames.shape == (B, logits.shape[1], model.n_features)
        assert torch.equal(model.head(frames), logits), name
        torch.testing.assert_close(frames[:, -1], model.features(x), rtol=0, atol=1e-5)
