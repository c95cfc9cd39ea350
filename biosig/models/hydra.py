"""Hydra (Dempster, Schmidt and Webb, 2023, "Hydra: competing convolutional kernels for fast and
accurate time series classification", Data Mining and Knowledge Discovery) as a torch module:
groups of random kernels that compete at every time step, their win counts under a ridge head.

Input  (B, C, F, T): the C x F rows are the paper's channels; windows of the training T (the
       dilations are chosen for it), T >= 9.
Output (B, K) logits.

The transform, as the paper describes it:
  kernels    g groups of k kernels of length 9, weights drawn from N(0, 1), then each kernel
             centred (its mean subtracted) and divided by the sum of its absolute weights;
             drawn anew at each dilation
  dilations  2^0, 2^1, ..., 2^floor(log2((T - 1) / 8)), zero-padded to keep the length
  inputs     half the groups convolve the series, the other half its first difference (T - 1)
  channels   each (dilation, group) sums a random subset of the rows (without replacement) of
             clip(rows // 2, 2, 8) rows (at most rows) and convolves the sum: the paper's
             multivariate variant (its "channels" are our C x F rows)
  counts     at every time step the k kernels of a group compete: the one with the largest
             output gets that output added to its count (soft), the one with the smallest
             output gets 1 (hard); per (dilation, input, group): k soft and k hard counts
  features   len(dilations) x g x k x 2 (T = 1152, the defaults: 8 x 64 x 8 x 2 = 8,192)
  scaling    the paper's "sparse scaler", fitted on the training windows: each count clipped at
             0 and square-rooted, then centred and divided by (its std + (its share of zero
             windows)^4 + 1e-8), a zero count kept at 0 (so a kernel that never wins says nothing);
             the divisor is kept at 1e-3 or more (a constant count would blow up on new windows)
Everything random is drawn in fit_data() from its seed (numpy), kept in buffers with the scaler's
statistics, so the checkpoint alone rebuilds the transform. The defaults are the paper's k = 8,
g = 64. The head is MiniRocket's closed-form ridge (models/rocket_head.py), as the paper fits it.
"""
import math

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import BadValue, number
from ..declare import Option
from .common import shape_problem
from .rocket_head import HEAD_OPTION, RocketHead

LENGTH = 9


def even_groups(text):
    """g: an even integer >= 2 (half the groups take the series, half its first difference)."""
    value = number(int, 2)(text)
    if value % 2:
        raise BadValue(f"{text} is odd: half the groups take the series, half its difference")
    return value


def hydra_dilations(n_times):
    """The paper's dilations for windows of n_times frames: [1, 2, 4, ..., 2^floor(log2((T-1)/8))]."""
    top = int(math.floor(math.log2(max(1.0, (n_times - 1) / (LENGTH - 1)))))
    return [2 ** e for e in range(top + 1)]


def channels_per_group(rows):
    """How many rows each group sums (the paper's multivariate variant): clip(rows // 2, 2, 8), at most rows."""
    return min(rows, max(2, min(8, rows // 2)))


class Hydra(RocketHead):
    """Hydra (Dempster et al., 2023): competing random kernels, their counts, a ridge head."""
    name = "hydra"
    options = (
        Option("k", number(int, 1), 8, "kernels per group, which compete (the paper: 8)"),
        Option("g", even_groups, 64, "groups of kernels, half on the series and half on its first difference "
               "(the paper: 64; even)"),
        HEAD_OPTION,
    )

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.1, k=8, g=64, head="auto"):
        self.record(locals())
        self.dilations = hydra_dilations(n_times)
        rows, half = n_elec * n_bands, g // 2
        n_features = len(self.dilations) * 2 * half * k * 2
        super().__init__(n_features, n_outputs, drop)
        self.k, self.half = k, half
        # filled by fit_data(): per (dilation, input): the kernels and the rows each group sums
        self.register_buffer("weight", torch.zeros(len(self.dilations), 2, half * k, 1, LENGTH))
        self.register_buffer("rows", torch.zeros(len(self.dilations), 2, half, channels_per_group(rows),
                                                 dtype=torch.long))
        self.register_buffer("mean", torch.zeros(n_features))          # the sparse scaler's statistics
        self.register_buffer("std", torch.ones(n_features))

    def input_problem(self, n_elec, n_bands, n_times):
        return shape_problem(self.config, n_elec, n_bands, n_times, LENGTH,
                             why="its kernels span 9 frames")

    @torch.no_grad()
    def fit_data(self, x, seed=0):
        """Draw the kernels and the groups' rows, and fit the sparse scaler, from training
        windows x (N, C, F, T), already preprocessed as training will see them."""
        gen = np.random.default_rng(seed)
        x = x.float().flatten(1, 2).to(self.weight.device)            # (N, rows, T)
        w = gen.standard_normal(self.weight.shape)
        w = w - w.mean(-1, keepdims=True)
        w = w / np.abs(w).sum(-1, keepdims=True)
        self.weight.copy_(torch.from_numpy(w))
        n_dil, _, half, size = self.rows.shape
        picks = [gen.choice(x.shape[1], size, replace=False) for _ in range(n_dil * 2 * half)]
        self.rows.copy_(torch.from_numpy(np.stack(picks)).view(self.rows.shape))
        self._clear_cache()
        counts = self._chunked(x)
        root = counts.clamp_min(0).sqrt()
        zeros = (root == 0).double().mean(0) ** 4 + 1e-8
        self._fitted(x, counts, root.mean(0), (root.std(0) + zeros).clamp_min(1e-3))

    def scale(self, counts):
        """The sparse scaler: counts (B, D) -> (B, D), a zero (or negative soft) count kept at 0."""
        root = counts.clamp_min(0).sqrt()
        return (root - self.mean) * (root > 0) / self.std

    def _features(self, x):
        """(B, rows, T) float32 -> counts (B, n_features): per dilation, per input (the series,
        its first difference), the groups' k soft counts then their k hard counts."""
        b = x.shape[0]
        inputs = (x, x[..., 1:] - x[..., :-1])
        feats = []
        for i, d in enumerate(self.dilations):
            for r, z in enumerate(inputs):
                summed = z[:, self.rows[i, r]].sum(2)                          # (B, g/2, T')
                out = F.conv1d(summed, self.weight[i, r], padding=(LENGTH - 1) * d // 2, dilation=d,
                               groups=self.half)
                out = out.view(b, self.half, self.k, -1)                       # (B, g/2, k, T')
                top, top_at = out.max(2)                                       # (B, g/2, T') each
                low_at = out.min(2).indices                                    # (argmin: 7x slower here)
                soft = top.new_zeros(b, self.half, self.k).scatter_add_(2, top_at, top)
                hard = top.new_zeros(b, self.half, self.k).scatter_add_(
                    2, low_at, torch.ones_like(top))
                feats.append(torch.stack((soft, hard), 1).flatten(1))          # (B, 2 g/2 k)
        return torch.cat(feats, 1)
