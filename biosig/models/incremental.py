"""Stepping a causal model through time: the pieces a per-frame model's `stepper()` is built of.

A stepper takes new input frames as they arrive and returns the outputs of the frames they
complete, keeping between calls what the past contributes (a causal convolution's last input
frames, input frames that do not yet fill a pooled frame, the Transformer's keys and values), so its outputs
equal forward_seq on the concatenated input without recomputing the past.

Everything works on a batch of B streams stepped together, with time as the last axis; a
stepper starts as forward_seq does (zero padding on the left, positions from 0), so a fresh
one is a restart (biosig.streaming's bounded context runs lanes of fresh steppers). The weights are taken once from the eval-mode model, with each BatchNorm folded
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
    """The last `keep` input frames: a causal convolution's left context.

    x (B, ..., n) new frames -> (B, ..., keep + n): the kept frames, then x; zeros before the
    first frame (the left padding of forward_seq)."""

    def __init__(self, keep):
        self.keep, self.frames = keep, None

    def extend(self, x):
        if self.frames is None:
            self.frames = x.new_zeros(*x.shape[:-1], self.keep)
        full = torch.cat([self.frames, x], -1)
        self.frames = full[..., full.shape[-1] - self.keep:]
        return full


def conv_frames(full, kernel, dilation=1):
    """(B, ..., p + n) frames, p = (kernel - 1) * dilation -> (B, ..., n, kernel): the frames
    each of the n new outputs of a causal convolution reads."""
    span = (kernel - 1) * dilation + 1
    return full.unfold(-1, span, 1)[..., ::dilation]


class CausalConv1d:
    """A causal (left-padded) Conv1d, stepped. weight (O, I, k) dense, bias (O,) or None.
    x (B, I, n) -> (B, O, n)."""

    def __init__(self, weight, bias, dilation=1):
        self.o, self.k, self.dilation = weight.shape[0], weight.shape[-1], dilation
        self.weight = weight.reshape(self.o, -1).t().contiguous()        # (I*k, O)
        self.bias = bias
        self.buffer = FrameBuffer((self.k - 1) * dilation)

    def __call__(self, x):
        b, i, n = x.shape
        if self.k == 1:
            frames = x.transpose(1, 2)                                        # (B, n, I)
        else:
            frames = conv_frames(self.buffer.extend(x), self.k, self.dilation)   # (B, I, n, k)
            frames = frames.transpose(1, 2).reshape(b, n, i * self.k)
        y = frames @ self.weight if self.bias is None else torch.addmm(self.bias, frames.reshape(b * n, -1), self.weight).view(b, n, -1)
        return y.transpose(1, 2)


class KeyValueCache:
    """The keys and values of every attention layer for every frame so far, in frame order.
    `frames`: how many to make room for at first (it grows, doubling, past that)."""

    def __init__(self, layers, frames=None):
        self.layers, self.room = layers, max(frames or 64, 1)
        self.k = self.v = None          # per layer: (B, H, capacity, Dh)

    def attend(self, layer, q, k, v, first):
        """q, k, v (B, H, m, Dh) of frames first..first+m-1 at attention layer `layer` ->
        attention output (B, H, m, Dh), causal, over every earlier frame and the new ones."""
        m = k.shape[2]
        end = first + m
        if self.k is None:
            self.k = [k.new_zeros(*k.shape[:2], max(self.room, end), k.shape[3]) for _ in range(self.layers)]
            self.v = [k.new_zeros(*k.shape[:2], max(self.room, end), k.shape[3]) for _ in range(self.layers)]
        elif end > self.k[layer].shape[2]:
            for buffers in (self.k, self.v):
                old = buffers[layer]
                more = old.new_zeros(*old.shape[:2], max(old.shape[2], end - old.shape[2]), old.shape[3])
                buffers[layer] = torch.cat([old, more], 2)
        self.k[layer][:, :, first:end], self.v[layer][:, :, first:end] = k, v
        keys, values = self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        if m == 1:                      # one query sees every key: plain softmax(q k^T / sqrt(d)) v, no
            scores = (q * q.shape[-1] ** -0.5) @ keys.transpose(2, 3)      # fused kernel's start-up cost
            return scores.softmax(-1) @ values
        mask = torch.arange(end) <= torch.arange(first, end)[:, None]      # frame j visible to query first + i: j <= first + i
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
