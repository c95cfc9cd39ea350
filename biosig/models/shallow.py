"""ShallowConvNet (Schirrmeister et al., 2017, "Deep learning with convolutional neural networks
for EEG decoding and visualization", Hum. Brain Mapp. 38:5391-5420), the shallow ConvNet.

Input  (B, C, F, T): the C x F rows are the paper's electrodes; windows of exactly the
       training T, at least kernel - 1 + pool frames long.
Output (B, K) logits.

A temporal convolution (40 filters of 25 samples) and a spatial convolution over all rows
(40 filters), split in two as the paper does, then BatchNorm, squaring, average pooling (75
samples, stride 15) and a logarithm -- the steps of filter-bank common spatial patterns (band
power of spatially filtered signals), learned end to end -- then dropout and a dense
classifier. Suits oscillatory (band-power) decoding such as motor imagery; the paper's sizes
are for 250 Hz, so scale kernel/pool/stride to other rates through --model-kwargs.
"""
import torch
from torch import nn

from ..errors import positive_int
from ..declare import Option
from .base import Model
from .common import shape_problem


class ShallowConvNet(Model):
    """ShallowConvNet (Schirrmeister et al., 2017): learned log band power of spatially filtered signals."""
    name = "shallow"
    per_frame = False
    recipe = ()
    fixed_frames = True
    options = (
        Option("filters", positive_int, 40, "temporal and spatial filters"),
        Option("kernel", positive_int, 25, "temporal kernel length"),
        Option("pool", positive_int, 75, "average pooling length"),
        Option("stride", positive_int, 15, "average pooling stride"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.5, filters=40, kernel=25, pool=75, stride=15):
        self.record(locals())
        super().__init__()
        self.temporal = nn.Conv2d(1, filters, (1, kernel))
        self.spatial = nn.Conv2d(filters, filters, (n_elec * n_bands, 1), bias=False)
        self.norm = nn.BatchNorm2d(filters)
        self.pool = nn.AvgPool2d((1, pool), stride=(1, stride))
        self.drop = nn.Dropout(drop)
        steps = max(1, (n_times - kernel + 1 - pool) // stride + 1)
        self.head = nn.Linear(filters * steps, n_outputs)

    def input_problem(self, n_elec, n_bands, n_times):
        c = self.config
        return shape_problem(c, n_elec, n_bands, n_times, c["kernel"] - 1 + c["pool"])

    def features(self, x):
        """x (B, C, F, T) -> the log band powers the dense head takes, after dropout (B, filters * steps)."""
        b, c, f, t = x.shape
        h = self.norm(self.spatial(self.temporal(x.reshape(b, 1, c * f, t))))   # (B, filters, 1, T')
        h = torch.log(torch.clamp(self.pool(h * h), min=1e-6))                   # log band power
        return self.drop(h).flatten(1)

    def forward(self, x):
        """x (B, C, F, T) -> logits (B, K)."""
        return self.head(self.features(x))
