"""MultiRocket and Hydra together (the pairing Dempster, Schmidt and Webb propose in the Hydra
paper, 2023: "Hydra + MultiRocket"): both transforms of the same windows, their features side by
side under one ridge head.

Input  (B, C, F, T): windows of the training T, T >= 10 (MultiRocket's difference needs 9 frames).
Output (B, K) logits.

The features: Hydra's counts under its sparse scaler (models/hydra.py), then MultiRocket's four
poolings standardized (models/multirocket.py), each transform drawn and fitted exactly as alone
(the same seed); D = Hydra's + MultiRocket's (T = 1152, the defaults: 8,192 + 9,408). The head is
MiniRocket's closed-form ridge on all of them (models/rocket_head.py).
"""
import torch

from .common import shape_problem
from .hydra import Hydra
from .minirocket import LENGTH
from .multirocket import MultiRocket
from .rocket_head import HEAD_OPTION, RocketHead


class RocketHydra(RocketHead):
    """Hydra's and MultiRocket's features side by side, one ridge head."""
    name = "rockethydra"
    options = (*MultiRocket.options[:-1], *Hydra.options[:-1], HEAD_OPTION)     # each transform's own, one head

    def __init__(self, n_elec, n_bands, n_outputs, n_times, drop=0.1, features=10_000, k=8, g=64,
                 max_dilations=32, head="auto"):
        self.record(locals())
        hydra = Hydra(n_elec, n_bands, n_outputs, n_times, k=k, g=g)
        multirocket = MultiRocket(n_elec, n_bands, n_outputs, n_times, features=features, max_dilations=max_dilations)
        self.split = hydra.head[-1].in_features
        super().__init__(self.split + multirocket.head[-1].in_features, n_outputs, drop)
        hydra.head = multirocket.head = None            # only their transforms: the head is this one
        self.hydra, self.multirocket = hydra, multirocket

    def input_problem(self, n_elec, n_bands, n_times):
        return shape_problem(self.config, n_elec, n_bands, n_times, LENGTH + 1,
                             why="its kernels span 9 frames of the first difference")

    @torch.no_grad()
    def fit_data(self, x, seed=0):
        """Fit both transforms from training windows x (N, C, F, T), as each fits alone."""
        self._clear_cache()
        for part in (self.hydra, self.multirocket):
            part.fit_data(x, seed=seed)
        # both kept the features of the windows they fitted on: keep them side by side instead
        keys = [k for k in self.hydra._cache if k in self.multirocket._cache]
        self._remember(keys, [torch.cat((self.hydra._cache[k], self.multirocket._cache[k])) for k in keys])
        self.hydra._clear_cache()
        self.multirocket._clear_cache()
        self.fitted.fill_(True)

    def scale(self, feats):
        """(B, D) -> Hydra's part sparse-scaled, MultiRocket's standardized (B, D)."""
        return torch.cat((self.hydra.scale(feats[:, :self.split]), self.multirocket.scale(feats[:, self.split:])), 1)

    def _features(self, x):
        """(B, rows, T) float32 -> (B, D): Hydra's counts, then MultiRocket's poolings."""
        return torch.cat((self.hydra._features(x), self.multirocket._features(x)), 1)

    def export_module(self):
        """The eval forward for torch.export and ONNX, through MultiRocket's exportable pooling."""
        return ExportRocketHydra(self)


class ExportRocketHydra(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        from .multirocket import doubling_max
        m, rows = self.model, x.float().flatten(1, 2)
        feats = torch.cat((m.hydra._features(rows), m.multirocket._features(rows, running_max=doubling_max)), 1)
        return m.head(m.scale(feats))
