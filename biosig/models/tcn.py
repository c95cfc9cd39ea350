"""TCN: a temporal convolutional network (Bai, Kolter & Koltun, 2018, "An empirical evaluation of
generic convolutional and recurrent networks for sequence modeling", arXiv:1803.01271).

Input  (B, C, F, T): the C x F rows are input channels; any T >= 1.
Output forward      -> (B, K) logits of the last frame.
       forward_seq  -> (B, T, K) logits of every frame; frame t sees input frames <= t only
                       (causal, left-padded dilated convolutions), so it suits streaming.

`levels` residual blocks; block i has two dilated causal convolutions (dilation 2**i, kernel
`kernel`), each with weight normalization, ReLU and dropout, and a 1x1 convolution on the
residual path where the width changes. The receptive field is 1 + 2 (kernel - 1)(2**levels - 1)
frames (181 for 4 levels of kernel 7). `levels` auto (the default) takes the fewest levels, at least
4, whose receptive field covers the training window, so a window task's last frame sees all of it
(with 4 levels, windows of 256 frames were classified from their last 181: at chance when the
class is decided earlier); the resolved number is stored in the config. Suits continuous decoding:
per-frame outputs, any window length.
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from ..errors import positive_int, positive_int_or
from ..declare import Option
from .base import Model
from .incremental import CausalConv1d


class TemporalBlock(nn.Module):
    def __init__(self, c_in, c_out, kernel, dilation, drop):
        super().__init__()
        pad = (kernel - 1) * dilation           # on the left only: causal
        self.body = nn.Sequential(
            nn.ConstantPad1d((pad, 0), 0.0), weight_norm(nn.Conv1d(c_in, c_out, kernel, dilation=dilation)),
            nn.ReLU(), nn.Dropout(drop),
            nn.ConstantPad1d((pad, 0), 0.0), weight_norm(nn.Conv1d(c_out, c_out, kernel, dilation=dilation)),
            nn.ReLU(), nn.Dropout(drop))
        self.shortcut = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


class TCN(Model):
    """TCN (Bai et al., 2018): dilated causal residual convolutions; per-frame outputs for streaming."""

    name = "tcn"
    per_frame = True
    recipe = ()
    options = (
        Option("channels", positive_int, 32, "filters of every block"),
        Option("levels", positive_int_or("auto"), "auto", "residual blocks (dilations 1, 2, 4, ...); auto: the "
               "fewest, at least 4, whose receptive field covers the training window"),
        Option("kernel", positive_int, 7, "kernel length of the dilated convolutions"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, drop=0.1, channels=32, levels=4, kernel=7):
        self.record(locals())
        super().__init__()
        widths = [n_elec * n_bands] + [channels] * levels
        self.blocks = nn.Sequential(*[TemporalBlock(widths[i], widths[i + 1], kernel, 2 ** i, drop)
                                      for i in range(levels)])
        self.head = FrameHead(channels, n_outputs)

    @staticmethod
    def resolve_options(config, n_times):
        """The Model contract's hook: levels auto -> the fewest levels, at least 4, whose receptive
        field 1 + 2 (kernel - 1)(2**levels - 1) covers the training window of n_times frames."""
        if config.get("levels", "auto") == "auto":
            config["levels"] = levels_for(n_times, config.get("kernel", 7))
        return config

    @property
    def n_features(self):
        """D = channels, the width of a frame's features."""
        return self.head.in_channels

    def features_seq(self, x):
        """x (B, C, F, T) -> every frame's last-block output, what the head takes (B, T, channels)."""
        b, c, f, t = x.shape
        return self.blocks(x.reshape(b, c * f, t)).transpose(1, 2)

    def features(self, x):
        """x (B, C, F, T) -> the last frame's features (B, channels)."""
        return self.features_seq(x)[:, -1]

    def forward_seq(self, x):
        """x (B, C, F, T) -> per-frame logits (B, T, K)."""
        return self.head(self.features_seq(x))

    def forward(self, x):
        """x (B, C, F, T) -> logits of the last frame (B, K): forward_seq's last frame, as checkpoints
        have always been scored. head(features(x)) is the same within 1e-6, not bit for bit: the
        head's 1x1 convolution over T frames sums in another order than over the last frame alone."""
        return self.forward_seq(x)[:, -1]

    @property
    def receptive_field(self):
        """Input frames an output frame depends on: 1 + 2 (kernel - 1)(2**levels - 1)."""
        c = self.config
        return 1 + 2 * (c["kernel"] - 1) * (2 ** c["levels"] - 1)

    def stepper(self, frames=None):
        """forward_seq stepped through time (biosig.models.incremental); its state is each
        convolution's last (kernel - 1) * dilation input frames, whatever the length."""
        return Stepper(self.eval())

    def step_module(self):
        """The stepper as an nn.Module of one frame and explicit state, for export (torch.export,
        ONNX): (x (B, C, F, 1), *state) -> (logits (B, K), *next state); initial_state(B) are zeros."""
        return StepModule(self.eval())


class FrameHead(nn.Conv1d):
    """The per-frame linear layer, a 1x1 Conv1d (so its parameters keep their names and shapes) that
    takes frame vectors: (B, D) -> (B, K), or (B, T, D) -> (B, T, K)."""

    def __init__(self, width, n_outputs):
        super().__init__(width, n_outputs, 1)

    def forward(self, h):
        if h.dim() == 2:
            return super().forward(h[..., None])[..., 0]
        return super().forward(h.transpose(1, 2)).transpose(1, 2)


def levels_for(n_frames, kernel, least=4):
    """The fewest levels (at least `least`) whose receptive field covers n_frames; `least` for
    kernel 1, whose field is one frame at any depth."""
    levels = least
    while kernel > 1 and 1 + 2 * (kernel - 1) * (2 ** levels - 1) < n_frames:
        levels += 1
    return levels


class StepModule(nn.Module):
    """forward_seq one frame at a time with its state as tensors: each dilated convolution's
    last (kernel - 1) * dilation input frames, (B, width, (kernel - 1) * dilation)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def initial_state(self, batch):
        return [torch.zeros(batch, conv.in_channels, (conv.kernel_size[0] - 1) * conv.dilation[0])
                for block in self.model.blocks for conv in (block.body[1], block.body[5])]

    def forward(self, x, *state):
        h, state, after = x.flatten(1, 2), list(state), []         # (B, C*F, 1)
        for block in self.model.blocks:
            y = h
            for conv in (block.body[1], block.body[5]):
                full = torch.cat([state.pop(0), y], -1)             # (B, width, (kernel - 1) * dilation + 1)
                after.append(full[..., 1:])
                y = F.relu(F.conv1d(full, conv.weight, conv.bias, dilation=conv.dilation))
            h = F.relu(y + block.shortcut(h))
        return (self.model.head(h[..., 0]), *after)


class Stepper:
    """TCN's forward_seq (eval mode) one chunk of frames at a time: step(x), x (B, C, F, n)
    -> (B, n, K) logits of the same n frames."""

    pool = 1

    def __init__(self, model):
        def conv(layer, dilation=1):
            bias = None if layer.bias is None else layer.bias.detach()
            return CausalConv1d(layer.weight.detach(), bias, dilation)   # weight_norm's weight, computed once
        self.blocks = []
        for i, block in enumerate(model.blocks):
            shortcut = None if isinstance(block.shortcut, nn.Identity) else conv(block.shortcut)
            self.blocks.append((conv(block.body[1], 2 ** i), conv(block.body[5], 2 ** i), shortcut))
        self.head = conv(model.head)

    @torch.inference_mode()
    def step(self, x):
        h = x.flatten(1, 2)                                      # (B, C*F, n)
        for a, b, shortcut in self.blocks:
            y = b(a(h).relu()).relu()
            h = (y + (h if shortcut is None else shortcut(h))).relu()
        return self.head(h).transpose(1, 2)
