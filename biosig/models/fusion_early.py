"""Early fusion (fusion-early): every input resampled (linearly, in time) to the fastest one's T
and stacked as channels, one encoder on the stack: the baseline users build by hand. An absent
input (or one modality dropout drops for a window) is zeros, which the model has seen in training
only with --modality-drop. The encoder's closed-form head (MiniRocket's ridge) is solved as its own.
"""
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError
from .fusion import ExportForward, Fusion, _exported, build_encoder, encoder_config
from .registry import ENCODERS
from .ridge import solve_into


class EarlyFusion(Fusion):
    """Every input resampled to the fastest one's T and stacked as channels; one encoder."""
    name = "fusion-early"

    def __init__(self, modalities, n_outputs, drop=0.1, encoder="minirocket", modality_drop=0.0, encoders=None):
        self.record(locals())
        super().__init__()
        self.stack = nn.ModuleDict()
        config = (encoders or {}).get("stack")
        self.stack["encoder"], width = build_encoder(config) if config else (nn.Identity(), 1)
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(width, n_outputs))
        self.register_buffer("penalty", torch.zeros((), dtype=torch.float64))

    @staticmethod
    def resolve_options(config, n_times=None):
        """One encoder, on the stack: C = every input's C, T = the longest T; one F for all."""
        mods = config["modalities"]
        bands = {m["n_bands"] for m in mods.values()}
        if len(bands) > 1:
            raise UserError(f"--model fusion-early stacks the inputs' channels and needs one F for all; the inputs "
                            f"have F = {sorted(bands)} (late or attention fusion take each as it is)")
        if config.get("encoders") is None:
            name = config.get("encoder", "minirocket")
            if name not in ENCODERS:
                raise UserError(f"--encoder {name}: fusion-early puts one model of one input on the stack "
                                f"({', '.join(sorted(ENCODERS))})")
            c = sum(m["n_elec"] for m in mods.values())
            t = max(m["n_times"] for m in mods.values())
            config["encoders"] = {"stack": encoder_config(name, c, bands.pop(), t, config["drop"])}
        return config

    @property
    def encoder(self):
        return self.stack["encoder"]

    def stacked(self, x):
        """x {name: (B, C_m, F, T_m)} -> (B, sum C_m, F, T_max): linear interpolation in time;
        an absent input (or one dropped in training) is zeros."""
        mods = self.config["modalities"]
        t = max(m["n_times"] for m in mods.values())
        keep = self.keep_masks(x)
        ref = next(iter(x.values()))
        parts = []
        for name, m in mods.items():
            if name not in x:
                parts.append(ref.new_zeros(len(ref), m["n_elec"], m["n_bands"], t))
                continue
            v = x[name].float()
            if v.shape[-1] != t:
                b, c, f, tm = v.shape
                v = F.interpolate(v.reshape(b, c * f, tm), size=t, mode="linear", align_corners=False).reshape(b, c, f, t)
            parts.append(v if keep is None else v * keep[name][:, None, None, None])
        return torch.cat(parts, 1)

    def export_module(self):
        """An eval forward that torch.export and ONNX can trace (biosig.export): the encoder's own
        export form where it has one (MiniRocket's), the same numbers."""
        return ExportForward(self, {"encoder": _exported(self.encoder)},
                             lambda parts, x: parts["encoder"](self.stacked(x)).float())

    def fit_data(self, x, seed=0):
        if hasattr(self.encoder, "fit_data"):
            self.encoder.fit_data(self.stacked(x), seed=seed)

    def features(self, x):
        return self.encoder.features(self.stacked(x))

    def forward(self, x):
        return self.head(self.features(x))

    def head_windows(self, n):
        hw = getattr(self.encoder, "head_windows", None)
        return hw is not None and hw(n)

    @torch.no_grad()
    def head_features(self, x):
        return self.encoder.head_features(self.stacked(x)).float()

    @torch.no_grad()
    def fit_head(self, features, targets, weights=None):
        return solve_into(self.head[-1], self.penalty, features, targets, weights)

    def fixed_parameters(self):
        return list(self.head.parameters()) if float(self.penalty) > 0 else []
