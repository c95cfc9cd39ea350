"""What an exported file computes, as nn.Modules that torch.export traces (biosig/deploy/export.py
writes them): the checkpoint's network with its preprocessing and output transform baked in
(Deployed; several inputs: DeployedSeveral), band-power frames made from raw samples inside the
file (BandPowerFrames), and the per-frame step of a streaming model with its state as inputs and
outputs (Step).
"""
import inspect
import keyword

import numpy as np
import torch
from torch import nn

from .. import normalize as preprocess
from ..signals import bandpower


class BandPowerFrames(nn.Module):
    """x (B, C, 1, T) raw samples -> (B, C, F, T') float32 band power, what biosig.bandpower.BandPower
    computes (in float64 there): frames, each segment's mean removed, the Hann taper and the DFT
    rows of the bins the bands use as one matrix, then the bands' sums (and log10 with its floor)."""

    def __init__(self, bp):
        super().__init__()
        self.frame, self.hop, self.seg, self.step, self.log = bp.frame, bp.hop, bp.seg, bp.step, bp.log
        segs = 1 + (bp.frame - bp.seg) // bp.step                   # welch: segments averaged per frame
        used = np.flatnonzero(bp.weights.any(0))                     # only the bins some band sums
        angle = 2 * np.pi * np.arange(bp.seg)[:, None] * used[None, :] / bp.seg
        dft = np.concatenate([np.cos(angle), np.sin(angle)], 1) * bp.taper[:, None]          # (seg, 2 * bins)
        self.register_buffer("dft", torch.tensor(dft, dtype=torch.float32))
        self.register_buffer("band_sum", torch.tensor(bp.weights[:, used].T / segs, dtype=torch.float32))  # (bins, F)

    def forward(self, x):
        x = x[:, :, 0] - x[:, :, 0].mean(-1, keepdim=True)      # a DC offset would cost each frame float32 digits
        frames = x.unfold(-1, self.frame, self.hop)                            # (B, C, T', frame)
        segments = frames.unfold(-1, self.seg, self.step)                     # (B, C, T', segs, seg)
        coef = (segments - segments.mean(-1, keepdim=True)) @ self.dft        # (B, C, T', segs, 2 * bins)
        bins = self.dft.shape[1] // 2
        power = (coef[..., :bins] ** 2 + coef[..., bins:] ** 2).sum(-2)      # (B, C, T', bins)
        bands = power @ self.band_sum                                          # (B, C, T', F)
        if self.log:
            bands = torch.log10(torch.clamp(bands, min=bandpower.LOG_FLOOR))
        return bands.transpose(-1, -2)


def traceable_net(predictor):
    """The checkpoint's network as torch.export can trace it: a model whose forward does not trace
    (MiniRocket's data-dependent indexing, a fusion of such encoders) gives an equivalent
    export_module(), and a network around the model (several targets' heads) is rebuilt around it."""
    model = predictor.model
    if not hasattr(model, "export_module"):
        return predictor.net
    exported = model.export_module()
    return exported if predictor.net is model else predictor.task.network(exported, None)


class Deployed(nn.Module):
    """x (B, C, F, T) windows -> "values", as Predictor.predict gives them; with `bp` (the
    checkpoint's BandPower) x is (B, C, 1, samples) raw samples, made into its frames first."""

    def __init__(self, predictor, n_frames, bp=None):
        super().__init__()
        self.task, self.n_frames = predictor.task, n_frames
        self.bandpower = BandPowerFrames(bp) if bp is not None else None
        self.net = traceable_net(predictor)
        spec = predictor.preprocess
        self.zscore = spec.get("normalize") == "sample_zscore"
        self.standardize = spec.get("mean") is not None
        if self.standardize:                     # (1, C, F, 1), as preprocess.apply shapes them
            self.register_buffer("input_mean", torch.tensor(spec["mean"], dtype=torch.float32)[None, :, :, None])
            self.register_buffer("input_std", torch.tensor(spec["std"], dtype=torch.float32)[None, :, :, None])

    def forward(self, x):
        if self.bandpower is not None:
            x = self.bandpower(x)
        if self.standardize:
            x = (x - self.input_mean) / (self.input_std + preprocess.EPS)
        if self.zscore:
            x = preprocess.apply(x, {"normalize": "sample_zscore"})
        return self.task.values(self.net(x), self.n_frames)


class Preprocessing(nn.Module):
    """One input's preprocessing spec (biosig.normalize) as a module: x (B, C, F, T) -> what
    normalize.apply gives, the --standardize statistics as buffers."""

    def __init__(self, spec):
        super().__init__()
        self.zscore = spec.get("normalize") == "sample_zscore"
        self.standardize = spec.get("mean") is not None
        if self.standardize:                     # (1, C, F, 1), as normalize.apply shapes them
            self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32)[None, :, :, None])
            self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32)[None, :, :, None])

    def forward(self, x):
        if self.standardize:
            x = (x - self.mean) / (self.std + preprocess.EPS)
        if self.zscore:
            x = preprocess.apply(x, {"normalize": "sample_zscore"})
        return x


class DeployedSeveral(nn.Module):
    """A checkpoint of several inputs: (x_1 (B, C_1, F_1, T_1), x_2, ...), one per input in
    predictor.inputs' order, each with its own preprocessing -> the task's values (several
    targets: {name: values}), as Predictor.predict gives them. Every input is required (an absent
    sensor is infer.py's). Build it with DeployedSeveral.named(predictor, n_frames): its forward's
    arguments are then the inputs' names, which torch.export gives the graph's inputs."""

    def __init__(self, predictor, n_frames):
        super().__init__()
        self.task, self.n_frames, self.names = predictor.task, n_frames, list(predictor.inputs)
        self.net = traceable_net(predictor)
        specs = predictor.preprocess["inputs"]
        self.preprocess = nn.ModuleDict({name: Preprocessing(specs[name]) for name in self.names})

    def forward(self, *xs):
        x = {name: self.preprocess[name](v) for name, v in zip(self.names, xs)}
        return self.task.values(self.net(x), self.n_frames)

    @classmethod
    def named(cls, predictor, n_frames):
        """An instance of a subclass whose forward's signature is (self, <each input's name>) (a name
        that is not a Python identifier keeps forward(*xs): the graph's inputs are then xs_0, ...)."""
        if not all(n.isidentifier() and not keyword.iskeyword(n) and n != "self" for n in predictor.inputs):
            return cls(predictor, n_frames)

        def forward(self, *xs):
            return cls.forward(self, *xs)
        p = inspect.Parameter
        forward.__signature__ = inspect.Signature([p(n, p.POSITIONAL_OR_KEYWORD) for n in ["self", *predictor.inputs]])
        return type(cls.__name__, (cls,), {"forward": forward})(predictor, n_frames)


class Step(nn.Module):
    """(x (B, C, F, 1) one input frame as the checkpoint's windows have them (band-power frames:
    one frame of band power, made outside), *state) -> (class probabilities (B, K), *next state):
    the model's step_module() with --standardize baked in, as infer.py --stream decodes."""

    def __init__(self, predictor):
        super().__init__()
        self.step = predictor.model.step_module()
        spec, config = predictor.preprocess, predictor.model.config
        standardized = spec.get("mean") is not None                   # else (x - 0) / (1 - EPS + EPS) = x
        shape = (config["n_elec"], config["n_bands"])
        mean = torch.tensor(spec["mean"]) if standardized else torch.zeros(shape)
        std = torch.tensor(spec["std"]) if standardized else torch.ones(shape) - preprocess.EPS
        self.register_buffer("input_mean", mean.float()[None, :, :, None])
        self.register_buffer("input_std", std.float()[None, :, :, None])

    def forward(self, x, *state):
        logits, *after = self.step((x - self.input_mean) / (self.input_std + preprocess.EPS), *state)
        return (torch.softmax(logits, -1), *after)
