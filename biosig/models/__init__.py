"""Model architectures, chosen by name. Each takes (B, C, F, T) and returns (B, K).

Every model is built from a plain config dict (what the checkpoint stores), has a `config`
attribute that rebuilds it, and an `input_problem(C, F, T)` that says, before any forward
pass, why an input shape will not fit (or None when it does).
"""
from .eeg2arm import EEG2Arm

MODELS = {"eeg2arm": EEG2Arm}


def build_model(config):
    """config: {"name": ..., **constructor kwargs} -> nn.Module."""
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return MODELS[config["name"]](**kwargs)
