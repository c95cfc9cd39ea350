"""Pieces several models share: the (C, F) check of input_problem, max-norm layers."""
import torch
from torch import nn
from torch.nn import functional as F


def shape_problem(config, n_elec, n_bands, n_times, min_frames, flag="--model-kwargs", why=None):
    """Why an input (., C, F, T) does not fit a model built for config's C and F with at least
    `min_frames` frames (and exactly config["n_times"] when the model has a fixed length), or None.
    why: what sets the minimum, when no option can lower it."""
    if n_elec != config["n_elec"]:
        return f"the model takes C={config['n_elec']} channels, the input has C={n_elec}"
    if n_bands != config["n_bands"]:
        return f"the model takes F={config['n_bands']} bands, the input has F={n_bands}"
    if n_times < min_frames:
        return (f"T={n_times} frames is too short: --model {config['name']} needs T >= {min_frames} "
                f"({why or f'smaller kernels or pooling through {flag}'})")
    fixed = config.get("n_times")
    if fixed is not None and n_times != fixed:
        return f"--model {config['name']} takes windows of exactly T={fixed} frames (its training length), got T={n_times}"
    return None


def same_padding(kernel):
    """(left, right) zero padding that keeps the time length through a convolution of `kernel`
    (an even kernel gets the extra frame on the right)."""
    return (kernel - 1) // 2, kernel // 2


class MaxNormConv2d(nn.Conv2d):
    """Conv2d whose filters are rescaled to an L2 norm of at most `max_norm` in every forward
    pass (the norm constraint of EEGNet's spatial filters)."""

    def __init__(self, *args, max_norm=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x):
        return self._conv_forward(x, torch.renorm(self.weight, 2, 0, self.max_norm), self.bias)


class MaxNormLinear(nn.Linear):
    """Linear whose rows (one per output) have an L2 norm of at most `max_norm`."""

    def __init__(self, *args, max_norm=0.25, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x):
        return F.linear(x, torch.renorm(self.weight, 2, 0, self.max_norm), self.bias)
