"""EEGNet: a compact convolutional network for EEG (Lawhern et al., 2018, "EEGNet: a compact
convolutional neural network for EEG-based brain-computer interfaces", J. Neural Eng. 15 056013).

Input  (B, C, F, T): the C x F rows (electrodes, or electrode x band) are the paper's EEG
       channels; T time samples. Windows of exactly the training T (the dense head is sized
       for it), at least pool1 x pool2 frames long.
Output (B, K) logits.

Block 1: F1 temporal filters (kernel `kernel`, about half the sampling rate in the paper) ->
BatchNorm -> a depthwise spatial filter over all rows, D per temporal filter, max-norm 1 ->
BatchNorm -> ELU -> average pooling by pool1 -> dropout. Block 2: a separable convolution
(depthwise 1 x 16, then F2 pointwise) -> BatchNorm -> ELU -> pooling by pool2 -> dropout.
A dense softmax layer with max-norm 0.25. The paper's EEGNet-8,2 is f1=8, depth=2, f2=16, with
dropout 0.5 within subjects and 0.25 across (--drop). Suits small EEG data sets (a few hundred
trials), event-related and oscillatory tasks alike; few parameters, trains fast on CPU.
"""
from torch import nn

from ..errors import positive_int
from ..declare import Option
from .base import Model
from .common import MaxNormConv2d, MaxNormLinear, same_padding, shape_problem


def _same(kernel):
    """Zero padding of (B, C, rows, T) that keeps T through a (1, kernel) convolution."""
    return nn.ZeroPad2d(same_padding(kernel) + (0, 0))


class EEGNet(Model):
    """EEGNet-8,2 (Lawhern et al., 2018): temporal filters, depthwise spatial filters, a separable convolution."""
    name = "eegnet"
    per_frame = False
    # braindecode's trialwise recipe for it (AdamW 6.25e-4, no weight decay, cosine, 100 epochs),
    # the paper's cross-subject dropout, per-channel standardization: bench/bench_cv.py
    recipe = ("--standardize", "--schedule", "cosine", "--lr", "6.25e-4", "--wd", "0", "--drop", "0.25",
              "--epochs", "100")
    fixed_frames = True          # the dense head is sized for the training T
    options = (
        Option("f1", positive_int, 8, "temporal filters (F1)"),
        Option("depth", positive_int, 2, "spatial filters per temporal filter (D)"),
        Option("f2", positive_int, 16, "pointwise filters of the separable convolution (F2)"),
        Option("kernel", positive_int, 64, "temporal kernel length (the paper: half the sampling rate)"),
        Option("pool1", positive_int, 4, "time pooling after block 1"),
        Option("pool2", positive_int, 8, "time pooling after block 2"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.25, f1=8, depth=2, f2=16, kernel=64,
                 pool1=4, pool2=8):
        self.record(locals())
        super().__init__()
        rows = n_elec * n_bands
        self.block1 = nn.Sequential(
            _same(kernel), nn.Conv2d(1, f1, (1, kernel), bias=False), nn.BatchNorm2d(f1),
            MaxNormConv2d(f1, f1 * depth, (rows, 1), groups=f1, bias=False, max_norm=1.0),
            nn.BatchNorm2d(f1 * depth), nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(drop))
        self.block2 = nn.Sequential(
            _same(16), nn.Conv2d(f1 * depth, f1 * depth, (1, 16), groups=f1 * depth, bias=False),
            nn.Conv2d(f1 * depth, f2, 1, bias=False), nn.BatchNorm2d(f2), nn.ELU(),
            nn.AvgPool2d((1, pool2)), nn.Dropout(drop))
        self.head = MaxNormLinear(f2 * max(1, n_times // pool1 // pool2), n_outputs, max_norm=0.25)

    def input_problem(self, n_elec, n_bands, n_times):
        return shape_problem(self.config, n_elec, n_bands, n_times, self.config["pool1"] * self.config["pool2"])

    def features(self, x):
        """x (B, C, F, T) -> what the dense head takes (B, F2 * (T // pool1 // pool2))."""
        b, c, f, t = x.shape
        h = self.block2(self.block1(x.reshape(b, 1, c * f, t)))      # (B, F2, 1, T // pool1 // pool2)
        return h.flatten(1)

    def forward(self, x):
        """x (B, C, F, T) -> logits (B, K)."""
        return self.head(self.features(x))
