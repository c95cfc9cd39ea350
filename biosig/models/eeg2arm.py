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
import math

import torch
from torch import nn

from ..errors import positive_int
from ..options import Option


class EEG2Arm(nn.Module):
    """EEG2Arm (the guide's model): per-electrode convolutions, a spatial mix, a tiny causal Transformer."""

    name = "eeg2arm"
    per_frame = True
    recipe = ()
    # the guide's flags (--cnn-time-pool --frame-embed --layers --heads) stay train.py flags
    options = (
        Option("cnn_time_pool", positive_int, 2, "time pooling factor of the CNN stem", flag="--cnn-time-pool"),
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
        super().__init__()
        self.config = dict(name="eeg2arm", n_elec=n_elec, n_bands=n_bands, n_outputs=n_outputs,
                           cnn_time_pool=cnn_time_pool, frame_embed=frame_embed, drop=drop,
                           depth_mult=depth_mult, spatial_filters=spatial_filters,
                           n_layers=n_layers, n_heads=n_heads, kernel_time=kernel_time)
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
        layer = nn.TransformerEncoderLayer(frame_embed, heads, dim_feedforward=2 * frame_embed,
                                           dropout=drop, activation="gelu", batch_first=True,
                                           norm_first=True, bias=False)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(frame_embed)
        self.head = nn.Linear(frame_embed, n_outputs)

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

    def forward_seq(self, x):
        """x (B, C, F, T) -> per-frame logits (B, T', K)."""
        h = self.stem(x)                                   # (B, S, F', T')
        b, s, f, t = h.shape
        h = self.frame_proj(h.reshape(b, s * f, t))        # (B, D, T'): one vector per frame
        h = h.transpose(1, 2)                              # (B, T', D)
        h = h + self._positions(t, h.shape[-1], h.device, h.dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=h.device, dtype=h.dtype)
        h = self.transformer(h, mask=mask, is_causal=True)
        return self.head(self.norm(h))

    def forward(self, x):
        """x (B, C, F, T) -> logits of the last frame (B, K)."""
        return self.forward_seq(x)[:, -1]
