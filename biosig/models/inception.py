"""Inception network of InceptionTime (Ismail Fawaz et al., 2020, "InceptionTime: finding AlexNet
for time series classification", Data Min. Knowl. Disc. 34:1936-1962).

Input  (B, C, F, T): the C x F rows are input channels of 1-D convolutions; any T >= 1.
Output (B, K) logits.

`depth` Inception modules (6 in the paper), with a residual shortcut around every three. A
module: a 1x1 bottleneck to `filters` channels (when the input has more than one), three
parallel convolutions of kernel lengths kernel, kernel/2, kernel/4 (40, 20, 10), and a
max-pooling branch (3, stride 1) followed by a 1x1 convolution; the four branches are
concatenated (4 x filters channels), then BatchNorm and ReLU. Global average pooling and a
linear layer end it. The paper's InceptionTime is an ensemble of five such networks trained
from different initialisations: train this model with several --seed values and average their
predictions for the ensemble. Suits multivariate time series of any length (sensors, EEG).
"""
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import positive_int
from ..declare import Option
from .base import Model
from .common import same_padding


def _same_conv(c_in, c_out, kernel):
    """A length-keeping 1-D convolution without bias (even kernels padded one more on the right)."""
    return nn.Sequential(nn.ConstantPad1d(same_padding(kernel), 0.0),
                         nn.Conv1d(c_in, c_out, kernel, bias=False))


class InceptionModule(nn.Module):
    def __init__(self, c_in, filters, kernel):
        super().__init__()
        self.bottleneck = nn.Conv1d(c_in, filters, 1, bias=False) if c_in > 1 else nn.Identity()
        width = filters if c_in > 1 else c_in
        self.branches = nn.ModuleList(_same_conv(width, filters, max(1, kernel // 2 ** i)) for i in range(3))
        self.pool_conv = nn.Conv1d(c_in, filters, 1, bias=False)
        self.norm = nn.BatchNorm1d(4 * filters)

    def forward(self, x):
        h = self.bottleneck(x)
        pooled = F.max_pool1d(F.pad(x, (1, 1), value=float("-inf")), 3, stride=1)
        out = torch.cat([branch(h) for branch in self.branches] + [self.pool_conv(pooled)], dim=1)
        return self.norm(out).relu()


class Inception(Model):
    """Inception network (InceptionTime, Ismail Fawaz et al., 2020): inception modules with residuals."""

    name = "inception"
    per_frame = False
    recipe = ()
    options = (
        Option("filters", positive_int, 32, "filters per branch (a module outputs 4x this)"),
        Option("depth", positive_int, 6, "inception modules (a residual shortcut around every three)"),
        Option("kernel", positive_int, 40, "longest kernel (the others: half and a quarter of it)"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, drop=0.0, filters=32, depth=6, kernel=40):
        self.record(locals())
        super().__init__()
        c_in = n_elec * n_bands
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        width, block_in = c_in, c_in
        for i in range(depth):
            self.blocks.append(InceptionModule(width, filters, kernel))
            width = 4 * filters
            if i % 3 == 2:      # a residual connection around every three modules
                self.shortcuts.append(nn.Sequential(nn.Conv1d(block_in, width, 1, bias=False),
                                                    nn.BatchNorm1d(width)))
                block_in = width
        self.drop = nn.Dropout(drop)
        self.head = nn.Linear(width, n_outputs)

    def features(self, x):
        """x (B, C, F, T) -> the pooled last module, after dropout (B, 4 * filters)."""
        b, c, f, t = x.shape
        h = residual = x.reshape(b, c * f, t)
        for i, module in enumerate(self.blocks):
            h = module(h)
            if i % 3 == 2:
                h = (h + self.shortcuts[i // 3](residual)).relu()
                residual = h
        return self.drop(h.mean(dim=2))

    def forward(self, x):
        """x (B, C, F, T) -> logits (B, K)."""
        return self.head(self.features(x))
