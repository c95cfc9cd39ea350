"""Attention fusion (fusion-attention): one encoder per input, its frames as tokens, and a small
latent array that attends to every input's tokens, as in the Perceiver (Jaegle et al., 2021,
"Perceiver: General Perception with Iterative Attention"): one cross-attention from the latents
to the tokens, an MLP, one self-attention layer among the latents, and the mean latent to the head.

A per-frame encoder (features_seq) gives one token per frame, pooled to at most MAX_TOKENS per
eighth of the window; another gives one token, its embedding. Each token carries its input's
learned embedding and a sinusoidal code of its time in the window (0..1 of it), so inputs at
different rates line up by time, not by frame. An absent input (or one modality dropout drops
for a window) is left out of the attention: its tokens are masked.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..declare import Option
from ..errors import UserError, positive_int
from .fusion import Fusion, build_encoder

MAX_TOKENS = 8          # tokens per eighth of the window, per input, at most


class AttentionFusion(Fusion):
    """One encoder per input; its frames as tokens; a latent array attends to them all."""
    name = "fusion-attention"
    closed_form = False
    options = (
        Option("encoder", str, "tcn", Fusion.options[0].help, flag="--encoder"),
        Fusion.options[1],
        Option("latents", positive_int, 8, "attention fusion: latent vectors that attend to the inputs' frames"),
        Option("dim", positive_int, 64, "attention fusion: width of the tokens and latents"),
        Option("heads", positive_int, 4, "attention fusion: attention heads (divides dim)"),
    )

    def __init__(self, modalities, n_outputs, drop=0.1, encoder="tcn", modality_drop=0.0, latents=8, dim=64,
                 heads=4, encoders=None):
        self.record(locals())
        super().__init__()
        if dim % heads:
            raise UserError(f"--model-kwargs dim={dim} must be a multiple of heads={heads}")
        self.encoders = nn.ModuleDict()
        self.project = nn.ModuleDict()
        for name, config in (encoders or {}).items():
            self.encoders[name], width = build_encoder(config)
            self.project[name] = nn.Linear(width, dim)
        self.kind = nn.ParameterDict({n: nn.Parameter(torch.randn(dim) * 0.02) for n in self.encoders})
        self.latents = nn.Parameter(torch.randn(latents, dim) * 0.02)
        self.cross = nn.MultiheadAttention(dim, heads, dropout=drop, batch_first=True)
        self.cross_norm, self.token_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross_mlp = _mlp(dim, drop)
        self.self_attn = nn.TransformerEncoderLayer(dim, heads, 2 * dim, drop, batch_first=True, norm_first=True)
        self.out_norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(dim, n_outputs))

    def _tokens(self, name, x):
        """One input's tokens (B, n, dim): its encoder's frames pooled to at most 8 MAX_TOKENS, each
        with its input's embedding and its time (the frame's centre, 0..1 of the window)."""
        enc = self.encoders[name]
        if getattr(enc, "per_frame", False):
            seq = enc.features_seq(x).float()                          # (B, T', D)
            step = max(1, seq.shape[1] // (MAX_TOKENS * 8))
            seq = F.avg_pool1d(seq.transpose(1, 2), step, step).transpose(1, 2) if step > 1 else seq
        else:
            seq = enc.features(x).float()[:, None]                     # one token
        n = seq.shape[1]
        when = (torch.arange(n, device=seq.device, dtype=torch.float32) + 0.5) / n
        return self.project[name](seq) + self.kind[name] + _time_code(when, self.latents.shape[1])

    def features(self, x):
        """x {name: (B, C_m, F_m, T_m)} (a name left out: absent) -> the mean latent (B, dim)."""
        keep = self.keep_masks(x)
        tokens, masks = [], []
        for name in self.encoders:
            if name not in x:
                continue
            t = self._tokens(name, x[name])
            tokens.append(t)
            dropped = torch.zeros(t.shape[:2], dtype=torch.bool, device=t.device)
            masks.append(dropped if keep is None else dropped | ~keep[name][:, None])
        tokens, masks = self.token_norm(torch.cat(tokens, 1)), torch.cat(masks, 1)
        q = self.latents.expand(tokens.shape[0], -1, -1)      # (not len(): torch.export keeps B dynamic)
        attended, _ = self.cross(self.cross_norm(q), tokens, tokens, key_padding_mask=masks, need_weights=False)
        z = q + attended
        z = z + self.cross_mlp(z)
        z = self.self_attn(z)
        return self.out_norm(z.mean(1))

    def forward(self, x):
        return self.head(self.features(x))


def _mlp(dim, drop):
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(drop), nn.Linear(2 * dim, dim))


def _time_code(when, dim):
    """Sinusoidal codes (n, dim) of times in [0, 1] of the window (the Transformer's, over the window)."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=when.device, dtype=torch.float32) * (-math.log(100.0) / max(1, half)))
    angle = when[:, None] * freq[None] * 2 * math.pi
    code = torch.cat([angle.sin(), angle.cos()], 1)
    return F.pad(code, (0, dim - code.shape[1]))
