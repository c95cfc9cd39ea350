"""Stepping a causal model through time: the pieces a per-frame model's `stepper()` is built of.

A stepper takes new input frames as they arrive and returns the outputs of the frames they
complete, keeping between calls what the past contributes (a causal convolution's last input
frames, input frames that do not yet fill a pooled frame, the Transformer's keys and values), so its outputs
equal forward_seq on the concatenated input without recomputing the past.

Everything works on R independent rows at once (R streams, or biosig.streaming's lanes of one
stream), with time as the last axis. A row can be restarted: from then on it computes as if its
input began there (zero padding on the left, positions from 0), which is what a bounded
context needs. The weights are taken once from the eval-mode model, with each BatchNorm folded
into the convolution before it (eval BatchNorm is a per-channel affine map), and convolutions
are written as products of unfolded frames: at one frame a step, CPU convolution kernels spend
more time starting than computing.
"""
import torch
from torch.nn import functional as F


def folded(conv_weight, bn, conv_bias=None):
    """An eval BatchNorm after a convolution -> (weight, bias) of the one convolution that does both."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv_bias is not None:
        bias = bias + conv_bias * scale
    return conv_weight * scale.reshape(-1, *[1] * (conv_weight.dim() - 1)), bias


class FrameBuffer:
    """The last `keep` input frames of each row: a causal convolution's left context.

    x (R, ..., n) new frames -> (R, ..., keep + n): the kept frames, then x; zeros before the
    first frame (the left padding of forward_seq)."""

    def __init__(self, keep):
        self.keep, self.frames = keep, None

    def extend(self, x):
        if self.frames is None:
            self.frames = x.new_zeros(*x.shape[:-1], self.keep)
        full = torch.cat([self.frames, x], -1)
        self.frames = full[..., full.shape[-1] - self.keep:]
        return full

    def restart(self, rows):
        """rows: (R,) bool -> their kept frames become zeros."""
        if self.frames is not None:
            self.frames = self.frames.masked_fill(rows.reshape(-1, *[1] * (self.frames.dim() - 1)), 0.0)


def conv_frames(full, kernel, dilation=1):
    """(R, ..., p + n) frames, p = (kernel - 1) * dilation -> (R, ..., n, kernel): the frames
    each of the n new outputs of a causal convolution reads."""
    span = (kernel - 1) * dilation + 1
    return full.unfold(-1, span, 1)[..., ::dilation]


class CausalConv1d:
    """A causal (left-padded) Conv1d, stepped. weight (O, I, k) dense, bias (O,) or None.
    x (R, I, n) -> (R, O, n)."""

    def __init__(self, weight, bias, dilation=1):
        self.o, self.k, self.dilation = weight.shape[0], weight.shape[-1], dilation
        self.weight = weight.reshape(self.o, -1).t().contiguous()        # (I*k, O)
        self.bias = bias
        self.buffer = FrameBuffer((self.k - 1) * dilation)

    def __call__(self, x):
        r, i, n = x.shape
        if self.k == 1:
            frames = x.transpose(1, 2)                                        # (R, n, I)
        else:
            frames = conv_frames(self.buffer.extend(x), self.k, self.dilation)   # (R, I, n, k)
            frames = frames.transpose(1, 2).reshape(r, n, i * self.k)
        y = frames @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.transpose(1, 2)

    def restart(self, rows):
        self.buffer.restart(rows)


class KeyValueCache:
    """The keys and values of every attention layer, for each of R rows, in frame order:
    buffer position j holds frame `base + j`. A query at frame q of a row attends to frames
    [max(its start, q - context + 1), q]. With `context` the frames nobody can attend to any
    more are dropped (shifted out) as new ones come, so memory stays bounded (at most
    2 context + 16 frames); with None the buffer grows, keeping every frame."""

    def __init__(self, layers, rows, context):
        self.layers, self.rows, self.context = layers, rows, context
        self.k = self.v = None          # per layer: (R, H, capacity, Dh)
        self.base = 0

    def prepare(self, first, m, start, like):
        """Room for frames first..first+m-1 (m <= context); start (R,) the rows' starts; like
        (H, m, Dh) a key tensor, for shapes."""
        if self.k is None:
            h, _, dh = like.shape
            capacity = 64 if self.context is None else 2 * self.context + 16
            self.k = [like.new_zeros(self.rows, h, capacity, dh) for _ in range(self.layers)]
            self.v = [like.new_zeros(self.rows, h, capacity, dh) for _ in range(self.layers)]
        capacity = self.k[0].shape[2]
        if first + m - self.base <= capacity:
            return
        if self.context is None:        # grow: keep everything
            for buffers in (self.k, self.v):
                for i, b in enumerate(buffers):
                    buffers[i] = torch.cat([b, torch.zeros_like(b)], 2)
            return
        keep = max(int(start.min()), first - self.context + 1)      # the oldest frame still attended to
        drop = keep - self.base
        for b in self.k + self.v:
            b[:, :, :first - keep] = b[:, :, drop:first - self.base].clone()
        self.base = keep

    def attend(self, layer, row, q, k, v, first, start):
        """q, k, v (H, m, Dh) of frames first..first+m-1 of `row` (its start `start`) at layer
        `layer` -> attention output (H, m, Dh), causal, over its cached frames and the new ones."""
        m = k.shape[1]
        at = first - self.base
        assert 0 <= at and at + m <= self.k[layer].shape[2], "frames outside the cache: a row's history exceeds its context"
        self.k[layer][row, :, at:at + m], self.v[layer][row, :, at:at + m] = k, v
        lo = start if self.context is None else max(start, first - self.context + 1)
        keys, values = self.k[layer][row, :, lo - self.base:at + m], self.v[layer][row, :, lo - self.base:at + m]
        mask = None
        if m > 1:                       # frame lo + j is visible to query first + i when lo + j <= first + i
            frames = torch.arange(lo, first + m)
            queries = torch.arange(first, first + m)[:, None]
            mask = (frames <= queries)
            if self.context is not None:
                mask &= frames > queries - self.context
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
