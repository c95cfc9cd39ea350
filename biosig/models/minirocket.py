"""MiniRocket (Dempster, Schmidt and Webb, 2021, "MiniRocket: A very fast (almost) deterministic
transform for time series classification", KDD '21) as a torch module: fixed random convolutions,
a ridge head fitted in closed form.

Input  (B, C, F, T): the C x F rows are the paper's channels; windows of the training T (the
       dilations are chosen for it), T >= 9.
Output (B, K) logits.

The transform, as the paper describes it:
  kernels    the 84 kernels of length 9 whose weights are -1, except three that are 2 (every
             choice of 3 of the 9 positions; each kernel sums to zero)
  dilations  up to 32 per kernel, exponentially spaced from 1 to (T - 1) / 8; the features are
             shared out among them (more to the small dilations, which repeat)
  padding    half of the (kernel, dilation) pairs are zero-padded to keep T, the other half are
             not (the output is then T - 8 * dilation long)
  channels   each (kernel, dilation) pair sums its convolution over a random subset of the rows,
             of size 2^U(0, log2(min(rows, 9) + 1)) rounded down
  biases     from the convolution output of one random training window per pair: its quantiles
             at the low-discrepancy positions frac(i * golden ratio)
  features   PPV, the proportion of output frames above each bias: about `features` of them
Everything random is drawn in fit_data(), once, from training windows at the start of the run
(the Model contract's fit hook); channel subsets, biases and the features' mean/std are buffers,
so they travel in the checkpoint and infer.py needs no training data.

The head, as the paper fits it: a ridge classifier in closed form on the standardized features
of every training window, one-vs-rest with targets +1/-1 (the task's least_squares: class
weights weigh the windows; regression fits its standardized targets), the penalty chosen from
logspace(-3, 3, 10) by exact leave-one-out error from one eigendecomposition (models/ridge.py).
The run fits it before the first epoch (head_windows / head_features / fit_head), in float64 with
autocast off, on the run's device; under DDP every rank computes its share of the features, rank
0 solves, the head is broadcast. The epochs then leave it as it is (fixed_parameters) and only
score it. The switch, option `head`: auto (the default) solves up to rocket_head.RIDGE_WINDOWS training
windows and beyond them trains the head with AdamW (dropout --drop, weight decay as its ridge
penalty, a few epochs) as the paper does with logistic regression on large data: the solve holds
every window's features (N x 10,000 floats, twice in float64) and a min(N, 10,000)^2 matrix in
memory. `head=ridge` or `head=adamw` forces one. The transform itself runs in float32 with no gradient,
a few windows at a time, per dilation: the rows in phase order (frames p, p + d, ...), one matmul for
the 84 kernels' sums of rows, one depthwise undilated convolution, one comparison of every frame with
every bias (_phases, _features; on (32, 1, 256) windows ~4x less CPU than a grouped dilated conv1d).
In training mode on CPU, the features of each window are kept (keyed by a hash of the window's
bytes, up to rocket_head.CACHE_BYTES) so later epochs train the head without recomputing the transform; a
window that changes (augmentation) is simply a new key.

Suits any multichannel series, short or long, few windows or many: the strong classical baseline
of the UEA archive, and the fastest model here to reach a good accuracy.
"""
import math
from itertools import combinations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import number, positive_int
from ..declare import Option
from .common import shape_problem
from .rocket_head import HEAD_OPTION, RocketHead

LENGTH = 9
# the 84 kernels: which three of the nine positions weigh 2
TRIPLES = list(combinations(range(LENGTH), 3))
GOLDEN = (math.sqrt(5) + 1) / 2
PAIRS = torch.tensor(list(combinations(range(LENGTH), 2)))          # (36, 2): a kernel's first two places
CHUNK = 2048             # window frames transformed at a time per thread (at least 4 windows): the
                         # comparison stays in cache; fewer, larger steps where threads wait for each other


def kernel_weights():
    """(84, 1, 9) float32: -1 everywhere, 2 at each kernel's three positions."""
    w = -torch.ones(len(TRIPLES), 1, LENGTH)
    for k, triple in enumerate(TRIPLES):
        w[k, 0, list(triple)] = 2.0
    return w


def dilations_and_counts(n_times, features, max_dilations=32):
    """The paper's dilations for windows of n_times frames, and how many features (biases) each
    kernel gets at each: (dilations [int], counts [int]), sum(counts) = features // 84."""
    per_kernel = max(1, features // len(TRIPLES))
    n_dil = min(per_kernel, max_dilations)
    max_exponent = math.log2(max(1.0, (n_times - 1) / (LENGTH - 1)))
    raw = np.floor(np.logspace(0, max_exponent, n_dil, base=2)).astype(np.int64)
    dilations, repeats = np.unique(raw, return_counts=True)
    counts = (repeats * (per_kernel / n_dil)).astype(np.int64)
    counts[: per_kernel - counts.sum()] += 1     # the remainder goes to the smallest dilations
    return dilations.tolist(), counts.tolist()


def quantiles(rows, q):
    """rows (k, L), q (k, n) in [0, 1] -> (k, n): each row's quantiles q, linearly interpolated
    (numpy's default rule)."""
    ordered = rows.double().sort(dim=-1).values
    pos = q * (rows.shape[-1] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(rows.shape[-1] - 1)
    a, b = ordered.gather(1, lo), ordered.gather(1, hi)
    return (a + (b - a) * (pos - lo)).to(rows.dtype)


def draw_row_subsets(gen, channels):
    """Fills channels (dilations, 84, rows) with the paper's random row subsets, drawn from the
    numpy generator gen in (dilation, kernel) order: 1 at 2^U(0, log2(min(rows, 9) + 1)) rows
    (rounded down), 0 elsewhere."""
    rows = channels.shape[-1]
    top = math.log2(min(rows, LENGTH) + 1)
    channels.zero_()
    for i in range(channels.shape[0]):
        for k in range(len(TRIPLES)):
            size = int(2 ** gen.uniform(0, top))
            channels[i, k, gen.choice(rows, min(size, rows), replace=False)] = 1.0


def bias_quantiles(first, shape):
    """The quantiles the biases (84, count) from feature number `first` on take: feature j of the
    whole transform takes frac((j + 1) * golden ratio), float64 (84, count)."""
    j = first + torch.arange(math.prod(shape), dtype=torch.float64).view(shape)
    return torch.remainder((j + 1) * GOLDEN, 1.0)


def bias_blocks(biases, dilations, counts):
    """Per dilation: (index, dilation, its first bias's number, its biases as an (84, count) view
    into the flat `biases`)."""
    first = 0
    for i, (d, count) in enumerate(zip(dilations, counts)):
        yield i, d, first, biases[first: first + len(TRIPLES) * count].view(len(TRIPLES), count)
        first += len(TRIPLES) * count


def ppv(out, bias, compare_upto=4):
    """Proportion of positive values: out (B, k, T') and bias (k, n) -> (B, k, n), the share of
    frames where out > bias. A few biases are compared one by one; more are counted at once:
    each frame's rank among its kernel's sorted biases (binary search), a histogram of the
    ranks, and its cumulative sum from the top."""
    b, k, t = out.shape
    n = bias.shape[1]
    if n <= compare_upto:
        return torch.stack([(out > bias[None, :, j, None]).sum(-1) for j in range(n)], -1) / t
    ordered, order = bias.sort(dim=1)
    rank = torch.searchsorted(ordered.expand(b, -1, -1).contiguous(), out.contiguous())   # biases below each frame
    hist = torch.zeros(b, k, n + 1, device=out.device).scatter_add_(2, rank, torch.ones_like(out))
    above = hist.flip(2).cumsum(2).flip(2)[..., 1:] / t          # frames above the j-th smallest bias
    return torch.empty_like(above).scatter_(2, order.expand(b, -1, -1), above)


class MiniRocket(RocketHead):
    """MiniRocket (Dempster et al., 2021): fixed dilated kernels, PPV pooling, a ridge head.

    The head's solve, the feature cache and the switch to AdamW: models/rocket_head.py. Its recipe,
    --epochs 1: the head is solved before epoch 1, which only scores it (head=adamw: its best epoch
    was the 1st to 3rd, bench/bench_cv.py: give --epochs 3)."""
    name = "minirocket"
    options = (
        Option("max_dilations", positive_int, 32, "dilations per kernel at most"),
        Option("features", number(int, 84), 10_000, "number of PPV features (the paper: 10,000; rounded down to "
               "a multiple of 84)"),
        HEAD_OPTION,
    )

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.1, features=10_000, max_dilations=32,
                 head="auto"):
        self.record(locals())
        rows = n_elec * n_bands
        dilations, counts = dilations_and_counts(n_times, features, max_dilations)
        n_features = len(TRIPLES) * sum(counts)
        super().__init__(n_features, n_outputs, drop)
        self.dilations, self.counts = dilations, counts
        self.register_buffer("weight", kernel_weights(), persistent=False)
        self.register_buffer("triples", torch.tensor(TRIPLES), persistent=False)   # (84, 3): where each weighs 2
        self.register_buffer("pair_of", torch.tensor([PAIRS.tolist().index(list(t[:2])) for t in TRIPLES]),
                             persistent=False)                                      # (84,): its first two, in PAIRS
        # filled by fit_data(): which rows each (dilation, kernel) sums, its biases, feature statistics
        self.register_buffer("channels", torch.zeros(len(self.dilations), len(TRIPLES), rows))
        self.register_buffer("biases", torch.zeros(n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def input_problem(self, n_elec, n_bands, n_times):
        return shape_problem(self.config, n_elec, n_bands, n_times, LENGTH,
                             why="its kernels span 9 frames")

    def _convolve(self, x, i):
        """x (B, rows, T) -> the outputs at dilation i: (padded (B, 84, T), whether each kernel is padded (84,))."""
        out, padded = self._conv(x.transpose(1, 2), i)
        return out.transpose(1, 2), padded

    def _phases(self, x, i, frames, mix=True):
        """x (B, T', rows) time-major, zeros from T on, T' >= q d with q = ceil(T / d) (mix=False:
        (B, T', 84), each kernel's own sum of rows) -> the 84 zero-padded outputs at dilation i,
        (B, d, q, 84): [b, p, j, k] is kernel k at frame j d + p (frames from T on are past the
        series: not outputs).
        A dilated convolution is an undilated one on each of the d phases of the series (frames p,
        p + d, p + 2d, ...; the zeros past T are its padding): the frames rearranged phase by
        phase, each kernel's rows summed by one matmul, the sums, viewed as an image (B, 84, d, q)
        with its channels last (no copy), take a depthwise (1, 9) convolution, which the CPU
        backend runs at full speed (a dilated grouped conv1d ran ~20x slower)."""
        d, b = self.dilations[i], x.shape[0]
        q = -(-frames // d)
        x = x[:, : q * d].reshape(b, q, d, x.shape[-1]).transpose(1, 2)             # (B, d, q, rows)
        z = x @ self.channels[i].T.to(x.dtype) if mix else x.contiguous()          # (B, d, q, 84)
        out = F.conv2d(z.permute(0, 3, 1, 2), self.weight[:, :, None].to(z.dtype), padding=(0, LENGTH // 2),
                       groups=len(TRIPLES))                                   # (B, 84, d, q), channels last
        return out.permute(0, 2, 3, 1)

    def _conv(self, x, i, mixed=False):
        """x (B, T, rows), time-major (or mixed=True: (B, T, 84), each kernel's own sum of rows) ->
        (the 84 zero-padded outputs at dilation i (B, T, 84), time-major, in time order; whether
        each kernel is padded (84,) bool)."""
        frames = x.shape[1]
        out = self._phases(F.pad(x, (0, 0, 0, self.dilations[i] - 1)), i, frames, mix=not mixed)   # (B, d, q, 84)
        b, d, q, k = out.shape
        out = out.transpose(1, 2).reshape(b, q * d, k)[:, :frames]
        padded = (torch.arange(len(TRIPLES)) + i) % 2 == 0      # the paper's alternation
        return out, padded

    def _constants(self, i, frames, device):
        """What PPV at dilation i takes, for windows of `frames` frames, kept per (i, frames,
        device) until the buffers change: (outside (d, q, 84) float in _phases' order, -inf at the
        places that are no PPV frame of their kernel (past the series; for an unpadded kernel, also
        the 4d frames at each end that padding touched), 0 elsewhere; the frames each kernel has
        (84,); its biases (1, count, 1, 84))."""
        key = (i, frames, str(device))
        if key not in self._constants_cache:
            d, trim = self.dilations[i], (LENGTH - 1) * self.dilations[i] // 2
            q = -(-frames // d)
            t = (torch.arange(q)[None, :] * d + torch.arange(d)[:, None])[..., None]     # (d, q, 1): frame
            unpadded = (torch.arange(len(TRIPLES)) + i) % 2 == 1                        # the paper's alternation
            outside = (t >= frames) | (((t < trim) | (t >= frames - trim)) & unpadded)
            kept = torch.where(unpadded, frames - 2 * trim, frames).float()
            bias = next(b for j, _, _, b in self._blocks() if j == i)                 # (84, count)
            self._constants_cache[key] = (torch.zeros(outside.shape).masked_fill_(outside, -math.inf).to(device),
                                          kept.to(device), bias.T.contiguous()[None, :, None, :])
        return self._constants_cache[key]

    def _parts(self, out, padded, d):
        """The two groups of kernels at one dilation: (kernel indices, their outputs (B, k, T'))."""
        trim = (LENGTH - 1) * d // 2
        for use_pad in (True, False):
            idx = torch.nonzero(padded == use_pad).flatten()
            if len(idx) == 0:
                continue
            part = out[:, idx]
            if not use_pad and trim > 0:          # the unpadded output: the frames padding did not touch
                part = part[..., trim: out.shape[-1] - trim]
            yield idx, part

    @torch.no_grad()
    def fit_data(self, x, seed=0):
        """Draw the channel subsets and fit the biases and the features' mean/std from training
        windows x (N, C, F, T), already preprocessed as training will see them."""
        gen = np.random.default_rng(seed)
        x = x.float().flatten(1, 2).to(self.biases.device)              # (N, rows, T)
        n = x.shape[0]
        draw_row_subsets(gen, self.channels)
        self._clear_cache()
        for i, d, first, bias in self._blocks():
            # one random training window per kernel
            pick = torch.as_tensor(gen.integers(0, n, len(TRIPLES)))
            mixed = torch.einsum("kc,kct->tk", self.channels[i], x[pick])[None]     # (1, T, 84)
            out, padded = self._conv(mixed, i, mixed=True)
            out = out.transpose(1, 2)                                              # (1, 84, T)
            q = bias_quantiles(first, bias.shape)
            for idx, part in self._parts(out, padded, d):
                bias[idx] = quantiles(part[0], q[idx])
        feats = torch.cat([self._features(x[s: s + 256]) for s in range(0, n, 256)])
        self._fitted(x, feats, feats.mean(0), feats.std(0, unbiased=False).clamp_min(1e-3))

    def scale(self, features):
        """The standardized features the head takes: (B, n_features) -> (B, n_features)."""
        return (features - self.mean) / self.std

    def _blocks(self):
        """Per dilation: (index, dilation, its first feature's number, its biases as a (84, count)
        view into self.biases)."""
        return bias_blocks(self.biases, self.dilations, self.counts)

    def _features(self, x):
        """(B, rows, T) float32 -> PPV features (B, n_features). At each dilation the 84 outputs
        are compared with their biases at once: the frames of an unpadded kernel that padding
        touched are set to -inf first (above no bias), and the comparison is written as 1.0 / 0.0
        into a float tensor (ATen vectorizes a comparison only into its inputs' dtype; into bool it
        ran ~20x slower). The counts are sums of ones: exact whatever the order, so the features do
        not depend on the batch."""
        chunk = max(4, CHUNK * torch.get_num_threads() // x.shape[-1])
        if len(x) > chunk:
            return torch.cat([self._features(x[s: s + chunk]) for s in range(0, len(x), chunk)])
        feats = []
        n, frames = x.shape[0], x.shape[-1]
        x = F.pad(x.transpose(1, 2), (0, 0, 0, max(self.dilations) - 1))     # (B, T + zeros, rows)
        space = torch.empty(n * len(TRIPLES) * max(self.counts) * (frames + max(self.dilations)), device=x.device)
        for i, d, _, bias in self._blocks():
            outside, kept, bias = self._constants(i, frames, x.device)
            out = self._phases(x, i, frames)                                  # (B, d, q, 84)
            out = out.add_(outside).view(n, 1, -1, len(TRIPLES))
            above = space[: n * bias.numel() * out.shape[2]].view(n, bias.shape[1], out.shape[2], len(TRIPLES))
            torch.gt(out, bias, out=above)                                    # (B, count, frames, 84)
            feats.append((above.sum(2) / kept).transpose(1, 2).flatten(1))
        return torch.cat(feats, 1)

    def _chunked(self, x):
        """(B, rows, T) -> (B, n_features): _features chunks the batch itself, by frames."""
        return self._features(x)

    def _clear_cache(self, *_):
        super()._clear_cache()
        self._constants_cache = {}

    def export_module(self):
        """An eval forward that torch.export and ONNX can trace, with the same numbers (biosig.export)."""
        return ExportForward(self)


class ExportForward(nn.Module):
    """MiniRocket's eval forward, x (B, C, F, T) -> logits (B, K), without its data-dependent steps
    (the same numbers): the padded and unpadded kernels of each dilation as constant indices (the
    model finds them with torch.nonzero), PPV by one comparison per bias (torch's ONNX exporter has
    no translation for the model's searchsorted), and no `fitted` check (a buffer read as a bool)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.groups = []                         # per dilation: ([(kernel indices, frames trimmed)], order)
        n_times = model.config["n_times"]
        for i, d, _, _ in model._blocks():
            _, padded = model._convolve(torch.zeros(1, model.channels[i].shape[1], n_times), i)   # the model's rule
            kept = padded.nonzero().flatten().tolist()
            trimmed = (~padded).nonzero().flatten().tolist()
            groups = [(idx, trim) for idx, trim in ((kept, 0), (trimmed, (LENGTH - 1) * d // 2)) if idx]
            order = torch.tensor(sum((idx for idx, _ in groups), [])).argsort().tolist()
            self.groups.append((groups, order))

    def forward(self, x):
        m, x = self.model, x.flatten(1, 2)                                   # (B, rows, T)
        feats = []
        for (i, d, _, bias), (groups, order) in zip(m._blocks(), self.groups):
            out = m._convolve(x, i)[0]                                       # (B, 84, T)
            parts = [ppv(out[:, idx, trim:out.shape[-1] - trim], bias[idx], compare_upto=bias.shape[1])
                     for idx, trim in groups]                                # (B, k, count) each
            feats.append(torch.cat(parts, 1)[:, order].flatten(1))
        return m.head((torch.cat(feats, 1) - m.mean) / m.std)
