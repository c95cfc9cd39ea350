"""MultiRocket (Tan, Dempster, Bergmeir and Webb, 2022, "MultiRocket: multiple pooling operators
and transformations for fast and effective time series classification", Data Mining and
Knowledge Discovery) as a torch module: MiniRocket's kernels on the series and on its first
difference, four pooling operators per (kernel, dilation, bias), a ridge head.

Input  (B, C, F, T): the C x F rows are the paper's channels; windows of the training T (the
       dilations are chosen for it), T >= 10 (the difference has T - 1 >= 9 frames).
Output (B, K) logits.

The transform, as the paper describes it:
  inputs     the series (T frames) and its first difference (T - 1), each with its own
             dilations, channel subsets and biases, drawn as MiniRocket draws them:
  kernels    MiniRocket's 84 (length 9, weights -1 and three 2s), its dilations (exponentially
             spaced up to (T' - 1) / 8), its alternation of zero-padded and unpadded outputs,
             its random row subsets (2^U(0, log2(min(rows, 9) + 1)) rows, summed) and its biases
             (quantiles frac(i x golden ratio) of one random training window's output)
  pooling    for each (kernel, dilation, bias), with z = the output - the bias over its T' frames:
               PPV   the proportion of positive z
               MPV   the mean of the positive z (0 when there is none)
               MIPV  the mean of the indices (0-based) of the positive z (-1 when none)
               LSPV  the longest stretch of consecutive positive z, in frames
  features   4 x 2 x (84 x the biases per kernel): about `features`, rounded down to a multiple
             of 8 x 84 = 672
  scaling    each feature standardized by its mean and std over the training windows (std kept
             at 1e-3 or more), as MiniRocket's head takes them
Everything random is drawn in fit_data() from its seed (numpy), kept in buffers, so the
checkpoint alone rebuilds the transform. The head is MiniRocket's closed-form ridge
(models/rocket_head.py), as the paper fits it.

The default count: transforming SelfRegulationSCP2's training windows (200 x 7 x 1,152) took 25
CPU-seconds at 10,000 features and 14 at 5,000 (2 threads on a machine loaded ~9 on 2 cores: 71 and
33 s of wall time; about half the CPU-seconds on 2 free threads), so the paper's 50,000 would take
~2 minutes of CPU, far past 30 s of wall time. The default is 10,000 (the count MiniRocket's paper
keeps): 8 x 84 x 14 = 9,408 features after rounding.
"""
import numpy as np
import torch
from torch.nn import functional as F

from ..errors import number, positive_int
from ..declare import Option
from .common import shape_problem
from .minirocket import (LENGTH, TRIPLES, bias_blocks, bias_quantiles, dilations_and_counts, draw_row_subsets,
                         kernel_weights, quantiles)
from .rocket_head import HEAD_OPTION, ExportForward, RocketHead

POOLS = ("ppv", "lspv", "mpv", "mipv")
INPUTS = 2              # the series and its first difference


def cumulative_max(v):
    """The running maximum of v (..., T') along its last dimension (torch.cummax's values)."""
    return torch.cummax(v, -1).values


def doubling_max(v):
    """cumulative_max by log2(T') steps of shifted maxima (the same integers), which ONNX can express."""
    shift = 1
    while shift < v.shape[-1]:
        v = torch.maximum(v, F.pad(v, (shift, 0))[..., :v.shape[-1]])
        shift *= 2
    return v


def pool(part, bias, running_max=cumulative_max):
    """The four pooling operators: part (B, k, T') outputs, bias (k, n) -> (B, k, n, 4): PPV, LSPV,
    MPV, MIPV of z = part - bias along the frames. Counts and index sums are integers (exact)."""
    frames = part.shape[-1]
    z = part[:, :, None, :] - bias[None, :, :, None]                         # (B, k, n, T')
    positive = z > 0
    so_far = positive.cumsum(-1, dtype=torch.int32)                           # positives up to each frame
    count = so_far[..., -1]
    some = count.clamp_min(1)
    ppv = count / frames
    mpv = torch.relu(z).sum(-1) / some                                        # 0 when no positive z
    # the indices of the positives summed: a positive at frame t counts once for each of the t
    # frames before it, i.e. sum over frames s of (positives after s) = T' count - sum of so_far
    index_sum = frames * count - so_far.sum(-1, dtype=torch.int32)
    mipv = torch.where(count > 0, index_sum / some, -1.0)
    # the stretch ending at each frame: positives so far less those up to the last non-positive
    at_last_stop = running_max(so_far.masked_fill(positive, 0))
    lspv = (so_far - at_last_stop).amax(-1)
    return torch.stack((ppv, lspv.float(), mpv, mipv.float()), -1)


class MultiRocket(RocketHead):
    """MultiRocket (Tan et al., 2022): MiniRocket's kernels on the series and its difference, four poolings."""
    name = "multirocket"
    options = (   # the first accepts 1 (tests/test_contract.py gives it twice)
        Option("max_dilations", positive_int, 32, "dilations per kernel at most"),
        Option("features", number(int, 8 * len(TRIPLES)), 10_000, "number of features, 4 poolings x 2 inputs x "
               "kernels x biases (the paper: 50,000; rounded down to a multiple of 672)"),
        HEAD_OPTION,
    )

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.1, features=10_000, max_dilations=32,
                 head="auto"):
        self.record(locals())
        rows = n_elec * n_bands
        # per input: (dilations, biases per kernel at each)
        self.plans = [dilations_and_counts(n_times - r, features // (len(POOLS) * INPUTS),
                                           max_dilations) for r in range(INPUTS)]
        n_biases = [len(TRIPLES) * sum(counts) for _, counts in self.plans]
        super().__init__(len(POOLS) * sum(n_biases), n_outputs, drop)
        self.register_buffer("weight", kernel_weights(), persistent=False)
        for r, (dilations, _) in enumerate(self.plans):   # filled by fit_data()
            self.register_buffer(f"channels{r}", torch.zeros(len(dilations), len(TRIPLES), rows))
            self.register_buffer(f"biases{r}", torch.zeros(n_biases[r]))
        self.register_buffer("mean", torch.zeros(self.head[-1].in_features))
        self.register_buffer("std", torch.ones(self.head[-1].in_features))

    def input_problem(self, n_elec, n_bands, n_times):
        return shape_problem(self.config, n_elec, n_bands, n_times, LENGTH + 1,
                             why="its kernels span 9 frames of the first difference")

    @staticmethod
    def _inputs(x):
        """(B, rows, T) -> the series and its first difference (B, rows, T - 1)."""
        return x, x[..., 1:] - x[..., :-1]

    def _blocks(self, r):
        """Per dilation of input r: (index, dilation, its first bias's number, its biases as an
        (84, count) view into biases{r})."""
        return bias_blocks(getattr(self, f"biases{r}"), *self.plans[r])

    def _convolve(self, z, r, i, d):
        """z (B, rows, T') -> the 84 kernels' outputs at dilation d of input r, zero-padded (B, 84, T')."""
        if z.shape[1] == 1:              # every kernel takes the one row
            return F.conv1d(z, self.weight, padding=(LENGTH - 1) * d // 2, dilation=d)
        summed = torch.einsum("kc,bct->bkt", getattr(self, f"channels{r}")[i], z)
        return F.conv1d(summed, self.weight, padding=(LENGTH - 1) * d // 2, dilation=d, groups=len(TRIPLES))

    @staticmethod
    def _halves(i, d, frames):
        """The paper's alternation at dilation index i: (kernels, first and last frame kept) for
        the padded half (every frame) and the unpadded half (the frames padding did not touch)."""
        trim = (LENGTH - 1) * d // 2
        return ((slice(i % 2, None, 2), 0, frames), (slice(1 - i % 2, None, 2), trim, frames - trim))

    @torch.no_grad()
    def fit_data(self, x, seed=0):
        """Draw the row subsets and fit the biases and the features' mean/std from training
        windows x (N, C, F, T), already preprocessed as training will see them."""
        gen = np.random.default_rng(seed)
        x = x.float().flatten(1, 2).to(self.weight.device)                     # (N, rows, T)
        n = x.shape[0]
        for r, z in enumerate(self._inputs(x)):
            channels = getattr(self, f"channels{r}")
            draw_row_subsets(gen, channels)
            for i, d, first, bias in self._blocks(r):
                pick = torch.as_tensor(gen.integers(0, n, len(TRIPLES)))       # one training window per kernel
                summed = torch.einsum("kc,kct->kt", channels[i], z[pick])[None]
                out = F.conv1d(summed, self.weight, padding=(LENGTH - 1) * d // 2, dilation=d,
                               groups=len(TRIPLES))[0]
                q = bias_quantiles(first, bias.shape)
                for half, lo, hi in self._halves(i, d, out.shape[-1]):
                    bias[half] = quantiles(out[half, lo:hi], q[half])
        self._clear_cache()
        feats = self._chunked(x)
        self._fitted(x, feats, feats.mean(0), feats.std(0, unbiased=False).clamp_min(1e-3))

    def scale(self, feats):
        """Standardized features (B, D) -> (B, D)."""
        return (feats - self.mean) / self.std

    def _features(self, x, running_max=cumulative_max):
        """(B, rows, T) float32 -> (B, n_features): per input, per dilation, (84, biases, 4 pools)."""
        feats = []
        for r, z in enumerate(self._inputs(x)):
            for i, d, _, bias in self._blocks(r):
                out = self._convolve(z, r, i, d)
                block = torch.empty(x.shape[0], *bias.shape, len(POOLS), device=x.device)
                for half, lo, hi in self._halves(i, d, out.shape[-1]):
                    block[:, half] = pool(out[:, half, lo:hi], bias[half], running_max)
                feats.append(block.flatten(1))
        return torch.cat(feats, 1)

    def export_module(self):
        """The eval forward for torch.export and ONNX: LSPV's running maximum by doubling_max
        (ONNX has no cummax), the same numbers."""
        return ExportMultiRocket(self)


class ExportMultiRocket(ExportForward):
    def forward(self, x):
        m = self.model
        return m.head(m.scale(m._features(x.float().flatten(1, 2), running_max=doubling_max)))
