"""ResNet for time series (Wang, Yan & Oates, 2017, "Time series classification from scratch
with deep neural networks: a strong baseline", IJCNN), the fully convolutional residual baseline.

Input  (B, C, F, T): the C x F rows are input channels of 1-D convolutions over time; any T >= 1
       (the convolutions keep the length, a global average pooling ends them).
Output (B, K) logits.

Three residual blocks of 64, 128, 128 filters; each block is three convolutions (kernels 8, 5,
3) with BatchNorm and ReLU, and a shortcut (a 1x1 convolution with BatchNorm where the width
changes) added before the last ReLU; then global average pooling over time and a linear
softmax layer. No pooling inside, so it suits short windows and sensor data (IMU, ECG) as well
as EEG; a strong general baseline for multivariate time-series classification.
"""
from torch import nn

from ..errors import positive_int
from ..declare import Option
from .base import Model
from .common import same_padding


def _conv(c_in, c_out, kernel):
    """A length-keeping convolution (even kernels padded one more on the right), BatchNorm."""
    return nn.Sequential(nn.ConstantPad1d(same_padding(kernel), 0.0),
                         nn.Conv1d(c_in, c_out, kernel, bias=False), nn.BatchNorm1d(c_out))


class ResidualBlock(nn.Module):
    def __init__(self, c_in, c_out, kernels=(8, 5, 3)):
        super().__init__()
        self.body = nn.Sequential(_conv(c_in, c_out, kernels[0]), nn.ReLU(), _conv(c_out, c_out, kernels[1]),
                                  nn.ReLU(), _conv(c_out, c_out, kernels[2]))
        self.shortcut = _conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


class ResNet1D(Model):
    """ResNet (Wang et al., 2017): three residual blocks of 1-D convolutions, global average pooling."""

    name = "resnet1d"
    per_frame = False
    recipe = ()
    options = (
        Option("width", positive_int, 64, "filters of the first block (the others have 2x)"),
    )

    def __init__(self, n_elec, n_bands, n_outputs, drop=0.0, width=64):
        self.record(locals())
        super().__init__()
        self.blocks = nn.Sequential(ResidualBlock(n_elec * n_bands, width), ResidualBlock(width, 2 * width),
                                    ResidualBlock(2 * width, 2 * width))
        self.drop = nn.Dropout(drop)
        self.head = nn.Linear(2 * width, n_outputs)

    def features(self, x):
        """x (B, C, F, T) -> the pooled last block, after dropout (B, 2 * width)."""
        b, c, f, t = x.shape
        h = self.blocks(x.reshape(b, c * f, t))           # (B, 2 * width, T)
        return self.drop(h.mean(dim=2))

    def forward(self, x):
        """x (B, C, F, T) -> logits (B, K)."""
        return self.head(self.features(x))
