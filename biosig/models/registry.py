"""The models of one input (B, C, F, T), by name: every one is also an encoder a fusion model
(fusion.py) can put on each of several inputs."""
from .eeg2arm import EEG2Arm
from .eegnet import EEGNet
from .hydra import Hydra
from .inception import Inception
from .minirocket import MiniRocket
from .multirocket import MultiRocket
from .resnet1d import ResNet1D
from .rockethydra import RocketHydra
from .shallow import ShallowConvNet
from .tangent import TangentSpace
from .tcn import TCN

ENCODERS = {m.name: m for m in (EEG2Arm, EEGNet, ShallowConvNet, ResNet1D, Inception, TCN, MiniRocket,
                                TangentSpace, Hydra, MultiRocket, RocketHydra)}
