"""EEG2Arm: per-electrode convolutions over (F, T), a spatial mix, a tiny causal Transformer.

Input  (B, C, F, T): C electrodes/channels, F bands (1 for raw time), T frames.
Output forward      -> (B, K) logits of the last frame.
       forward_seq  -> (B, T', K) logits of every frame, T' = T // cnn_time_pool; frame t
                       sees only input up to its own frames (causal convolutions and a
                       causal Transformer), so it suits streaming.

Unlike the reference model, an axis is pooled only when it is long enough: F=1 (raw time)
and F=2..3 skip band pooling, so F=1 no longer fails with "Output size is too small".
Time is pooled by `cnn_time_pool`, so T must be at least that long; `input_problem` says
so before training starts. T may differ between training and inference (sinusoidal
positions, no fixed length); C and F may not.
"""
import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import positive_int, positive_int_or
from ..declare import Option
from .base import Model
from .incremental import FrameBuffer, KeyValueCache, conv_frames, folded

MAX_FRAMES = 128        # --cnn-time-pool auto: the most frames the Transformer sees in training


class EEG2Arm(Model):
    """EEG2Arm (the guide's model): per-electrode convolutions, a spatial mix, a tiny causal Transformer."""

    name = "eeg2arm"
    per_frame = True
    recipe = ()
    # the guide's flags (--cnn-time-pool --frame-embed --layers --heads) stay train.py flags
    options = (
        Option("cnn_time_pool", positive_int_or("auto"), "auto",
               f"time pooling factor of the CNN stem; auto: 2, or T/{MAX_FRAMES} rounded up for windows of "
               f"T > {2 * MAX_FRAMES} frames, so attention stays cheap", flag="--cnn-time-pool"),
        Option("frame_embed", positive_int, 256, "Transformer embedding size per frame", flag="--frame-embed"),
        Option("n_layers", positive_int, 2, "Transformer layers", flag="--layers", dest="layers"),
        Option("n_heads", positive_int, 4, "attention heads (1 if it does not divide --frame-embed)",
               flag="--heads", dest="heads"),
        Option("depth_mult", positive_int, 4, "depthwise filters per electrode in the stem"),
        Option("spatial_filters", positive_int, 32, "filters of the 1x1 mix across electrodes"),
        Option("kernel_time", positive_int, 7, "time kernel of the first convolution"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, cnn_time_pool=2, frame_embed=256, drop=0.1,
                 depth_mult=4, spatial_filters=32, n_layers=2, n_heads=4, kernel_time=7):
        self.record(locals())
        super().__init__()
        width = n_elec * depth_mult
        kernel_band = 3 if n_bands >= 3 else 1          # no band kernel wider than the bands
        self.band_pool = 2 if n_bands >= 4 else 1       # pool bands only when there are enough
        self.time_pool = cnn_time_pool
        self.bands_out = n_bands // self.band_pool
        self.stem = nn.Sequential(
            # groups=n_elec: each electrode's (F, T) map gets its own filters. Time is padded on
            # the left only (causal), so frame t never sees a later frame (streaming-safe).
            nn.ZeroPad2d((kernel_time - 1, 0, kernel_band // 2, kernel_band // 2)),
            nn.Conv2d(n_elec, width, (kernel_band, kernel_time), groups=n_elec, bias=False),
            nn.BatchNorm2d(width), nn.GELU(),
            nn.AvgPool2d((self.band_pool, cnn_time_pool)),
            nn.ZeroPad2d((4, 0, 0, 0)),
            nn.Conv2d(width, width, (1, 5), groups=width, bias=False),
            nn.BatchNorm2d(width), nn.GELU(),
            nn.Conv2d(width, spatial_filters, 1, bias=False),   # 1x1 mix across electrodes
            nn.BatchNorm2d(spatial_filters), nn.GELU(),
            nn.Dropout(drop),
        )
        # per-frame projection as a 1x1 Conv1d over (S*F', T'): the same map as a Linear on
        # each frame, but its input gradient is contiguous. (A permute/reshape to frames here
        # hands BatchNorm2d a channels-last-strided gradient, for which PyTorch's CPU BatchNorm
        # backward returns wrong input gradients — seen on torch 2.13 with F'=1.)
        self.frame_proj = nn.Conv1d(spatial_filters * self.bands_out, frame_embed, 1)
        heads = n_heads if frame_embed % n_heads == 0 else 1
        self.transformer = CausalEncoder(frame_embed, heads, n_layers, drop)
        self.norm = nn.LayerNorm(frame_embed)
        self.head = nn.Linear(frame_embed, n_outputs)

    @staticmethod
    def resolve_options(config, n_times):
        """The Model contract's hook for options that depend on the training length T:
        --cnn-time-pool auto pools by 2 (the guide's value), or by ceil(T / 128) for longer windows,
        so the Transformer sees at most 128 frames. (At T'=576, SelfRegulationSCP2's raw windows
        pooled by 2, attention and the per-frame layers made a step of 64 windows take 3.8 s on
        2 cores; pooled by 9 to T'=128, 0.5 s.)"""
        if config.get("cnn_time_pool", "auto") == "auto":
            config["cnn_time_pool"] = max(2, math.ceil(n_times / MAX_FRAMES))
        return config

    @property
    def min_frames(self):
        return self.time_pool

    def input_problem(self, n_elec, n_bands, n_times):
        """Why an input (., C, F, T) cannot go through this model, or None."""
        c = self.config
        if n_elec != c["n_elec"]:
            return f"the model takes C={c['n_elec']} channels, the input has C={n_elec}"
        if n_bands != c["n_bands"]:
            return f"the model takes F={c['n_bands']} bands, the input has F={n_bands}"
        if n_times < self.min_frames:
            return (f"T={n_times} frames is too short: the model pools time by {self.time_pool} "
                    f"(--cnn-time-pool) and needs T >= {self.min_frames}")
        return None

    def _positions(self, n_frames, dim, device, dtype):
        pos = torch.arange(n_frames, device=device, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(n_frames, dim, device=device)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
        return pe.to(dtype)

    def _frames(self, x):
        """x (B, C, F, T) -> frame vectors with positions (B, T', D)."""
        # channels-last: the depthwise convolutions, BatchNorm and pooling run about twice as fast
        # on CPU in that layout (same values); the stem's output goes back to contiguous
        h = self.stem(x.contiguous(memory_format=torch.channels_last)).contiguous()   # (B, S, F', T')
        b, s, f, t = h.shape
        h = self.frame_proj(h.reshape(b, s * f, t))        # (B, D, T'): one vector per frame
        h = h.transpose(1, 2)                              # (B, T', D)
        return h + self._positions(t, h.shape[-1], h.device, h.dtype)

    def features_seq(self, x):
        """x (B, C, F, T) -> every frame's normed Transformer output, what the head takes (B, T', frame_embed)."""
        return self.norm(self.transformer(self._frames(x)))

    def features(self, x):
        """x (B, C, F, T) -> the last frame's, (B, frame_embed): features_seq(x)[:, -1], but the last
        layer computes its query, attention output and feed-forward for the last frame only."""
        return self.norm(self.transformer(self._frames(x), last_only=True))[:, -1]

    def forward_seq(self, x):
        """x (B, C, F, T) -> per-frame logits (B, T', K)."""
        return self.head(self.features_seq(x))

    def forward(self, x):
        """x (B, C, F, T) -> logits of the last frame (B, K): forward_seq(x)[:, -1] through features(x)."""
        return self.head(self.features(x))

    def stepper(self, frames=None):
        """forward_seq stepped through time (biosig.models.incremental); `frames`: how many
        output frames to make room for in the key/value cache (it grows past that)."""
        return Stepper(self, frames)


class Stepper:
    """EEG2Arm's forward_seq (eval mode) one chunk of frames at a time.

    step(x): x (B, C, F, n) new input frames, any n >= 0 -> (B, m, K) logits of the m output
    frames they complete (one per `pool` input frames). Input frames wait until they fill a
    pool (the stem then runs once per output frame), the stem's convolutions keep their last
    input frames, the Transformer its keys and values."""

    def __init__(self, model, frames=None):
        m = model.eval()
        pad1, conv1, bn1, _, _, _, conv2, bn2, _, conv3, bn3 = list(m.stem)[:11]
        self.pool, self.band_pool, self.bands_out = m.time_pool, m.band_pool, m.bands_out
        self.band_pad = pad1.padding[2]
        kb, kt = conv1.kernel_size
        w1, self.b1 = folded(conv1.weight.detach(), bn1)
        self.w1 = w1.reshape(m.config["n_elec"], -1, kb * kt)                 # (C, mult, kb*kt)
        self.kb, self.kt = kb, kt
        w2, self.b2 = folded(conv2.weight.detach(), bn2)
        self.w2 = w2.reshape(w2.shape[0], 1, -1)                               # (W, 1, 5)
        self.w3, self.b3 = (t.reshape(t.shape[0], -1) for t in folded(conv3.weight.detach(), bn3))
        self.proj_w, self.proj_b = m.frame_proj.weight.detach()[..., 0].t(), m.frame_proj.bias.detach()
        self.buf1, self.buf2 = FrameBuffer(kt - 1), FrameBuffer(self.w2.shape[-1] - 1)
        self.layers = [(layer.norm1.weight.detach(), layer.self_attn.in_proj_weight.detach().t(),
                        layer.self_attn.out_proj.weight.detach().t(), layer.norm2.weight.detach(),
                        layer.linear1.weight.detach().t(), layer.linear2.weight.detach().t(), layer.heads)
                       for layer in m.transformer.layers]
        self.norm, self.head_w, self.head_b = m.norm, m.head.weight.detach().t(), m.head.bias.detach()
        self.cache = KeyValueCache(len(self.layers), frames)
        self.positions = m._positions
        self.pending = None                                  # input frames short of a whole pool
        self.frames_out = 0
        self._pe = None

    @torch.inference_mode()
    def step(self, x):
        if self.pending is not None:
            x = torch.cat([self.pending, x], -1)
        b, c, f, n = x.shape
        n = n // self.pool * self.pool
        x, self.pending = x[..., :n], x[..., n:]
        if n == 0:
            return x.new_zeros(b, 0, self.head_w.shape[1])
        x = F.pad(x, (0, 0, self.band_pad, self.band_pad))
        frames = self.buf1.extend(x).unfold(2, self.kb, 1).unfold(3, self.kt, 1)   # (B, C, F, n, kb, kt)
        h = torch.einsum("bcfnk,cmk->bcmfn", frames.flatten(-2), self.w1).reshape(b, -1, f, n)
        h = F.gelu(h + self.b1[:, None, None])
        if self.band_pool > 1:
            h = h[:, :, :self.bands_out * self.band_pool].unflatten(2, (self.bands_out, self.band_pool)).mean(3)
        h = h.unflatten(-1, (-1, self.pool)).mean(-1)                               # (B, W, F', m)
        h = (conv_frames(self.buf2.extend(h), self.w2.shape[-1]) * self.w2[:, None]).sum(-1)
        h = F.gelu(h + self.b2[:, None, None])
        h = F.gelu(torch.einsum("bwfm,sw->bmsf", h, self.w3) + self.b3)           # (B, m, S, F')
        return self._transform(h.flatten(2) @ self.proj_w + self.proj_b)         # (B, m, D) -> (B, m, K)

    def _transform(self, h):
        """h (B, m, D) frame vectors of the next m output frames -> their logits (B, m, K); their
        keys and values join the cache. CausalLayer's arithmetic, with transposed weights."""
        b, m, d = h.shape
        first = self.frames_out
        if self._pe is None or self._pe.shape[0] < first + m:
            self._pe = self.positions(max(2 * (first + m), 64), d, h.device, h.dtype)
        h = h + self._pe[first:first + m]
        for i, (norm1, qkv, out, norm2, up, down, heads) in enumerate(self.layers):
            q, k, v = (F.layer_norm(h, (d,), norm1) @ qkv).view(b, m, 3, heads, -1).permute(2, 0, 3, 1, 4)
            att = self.cache.attend(i, q, k, v, first)                            # (B, H, m, Dh)
            h = h + att.transpose(1, 2).reshape(b, m, d) @ out
            h = h + F.gelu(F.layer_norm(h, (d,), norm2) @ up) @ down
        self.frames_out += m
        norm = self.norm
        return F.layer_norm(h, (d,), norm.weight, norm.bias, norm.eps) @ self.head_w + self.head_b


def dropout(x, p, training):
    """Inverted dropout, as F.dropout computes it (zero with probability p, scale the rest by
    1/(1-p)), with its float mask made in place from torch.rand: half F.dropout's time on CPU."""
    if not training or p == 0:
        return x
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


class CausalLayer(nn.Module):
    """One pre-norm Transformer layer (nn.TransformerEncoderLayer with norm_first=True,
    bias=False, GELU, feed-forward 2·D): the same parameters, names and initialisation, with
    one fused causal attention (scaled_dot_product_attention, is_causal) and a last-frame-only path.
    """

    def __init__(self, dim, heads, drop):
        super().__init__()
        self.self_attn = nn.Module()
        # created in nn.MultiheadAttention's order, so a seed gives the same weights as before
        self.self_attn.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.self_attn.out_proj = nn.Linear(dim, dim, bias=False)
        nn.init.xavier_uniform_(self.self_attn.in_proj_weight)
        self.linear1 = nn.Linear(dim, 2 * dim, bias=False)
        self.linear2 = nn.Linear(2 * dim, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim, bias=False)
        self.norm2 = nn.LayerNorm(dim, bias=False)
        self.heads, self.drop = heads, drop

    def _heads(self, z):
        """(B, L, D) -> (B, H, L, D/H)."""
        return z.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, h, last_only=False):
        """h (B, T, D) -> (B, T, D); last_only: (B, 1, D), the last frame's output alone."""
        b, t, d = h.shape
        a = self.norm1(h)
        w = self.self_attn.in_proj_weight
        split = self._heads
        if last_only:                   # the last frame attends to every frame: no mask
            h = h[:, -1:]
            q = split(F.linear(a[:, -1:], w[:d]))
            k, v = (split(z) for z in F.linear(a, w[d:]).chunk(2, dim=-1))
        else:
            q, k, v = (split(z) for z in F.linear(a, w).chunk(3, dim=-1))
        p = self.drop if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=not last_only and t > 1)
        att = self.self_attn.out_proj(att.transpose(1, 2).flatten(2))
        h = h + dropout(att, self.drop, self.training)
        ff = self.linear2(dropout(F.gelu(self.linear1(self.norm2(h))), self.drop, self.training))
        return h + dropout(ff, self.drop, self.training)


class CausalEncoder(nn.Module):
    """n_layers CausalLayers; like nn.TransformerEncoder, every layer starts as a copy of the first."""

    def __init__(self, dim, heads, n_layers, drop):
        super().__init__()
        first = CausalLayer(dim, heads, drop)
        self.layers = nn.ModuleList([first] + [copy.deepcopy(first) for _ in range(n_layers - 1)])

    def forward(self, h, last_only=False):
        """h (B, T, D) -> (B, T, D), or (B, 1, D) for the last frame with last_only."""
        for i, layer in enumerate(self.layers):
            h = layer(h, last_only=last_only and i == len(self.layers) - 1)
        return h
