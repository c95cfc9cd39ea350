"""Fusion: one model over several signals recorded at their own rates (PPG at 64 Hz beside a
3-axis accelerometer at 32 Hz), each window given as a dict {name: (B, C_m, F_m, T_m)} whose
inputs cover the same seconds.

Three ways to fuse, each a model by name:
  fusion-early      (fusion_early.py) every input resampled (linearly) to the fastest one's frames and stacked as
                    channels, one encoder on the stack: what users build by hand, the baseline
  fusion-late       one encoder per input (--encoder: any model of one input), their embeddings
                    (features(x), the Model contract) side by side, one linear head
  fusion-attention  one encoder per input, whose frames become tokens; a small latent array
                    attends to every input's tokens, Perceiver-style (perceiver.py)
Missing sensors. With --modality-drop p, each training window loses each input with probability p
(never all of them): late fusion then puts a learned "absent" embedding in its place, attention
fusion leaves its tokens out, early fusion zeroes its channels. At inference an input left out of
the dict is absent for every window, and a model trained without modality dropout refuses it
(a missing sensor is never silently zeros). Late fusion of random-kernel encoders (MiniRocket and
kin) solves its head in closed form as they do (a ridge, penalty by leave-one-out), and an absent
input's embedding is then the mean of its training embeddings.
"""
import torch
from torch import nn

from ..declare import Option
from ..errors import UserError, number
from .base import Model
from .registry import ENCODERS
from .ridge import solve_into



def encoder_names(text, names):
    """--encoder: one model for every input, or NAME=MODEL,... per input -> {input: model}."""
    if isinstance(text, dict):
        given = dict(text)
    elif "=" in text:
        given = dict(part.split("=", 1) for part in text.split(","))
    else:
        given = {n: text for n in names}
    for name, model in given.items():
        if name not in names:
            raise UserError(f"--encoder {name}={model}: not an input (the inputs are {', '.join(names)})")
        if model not in ENCODERS:
            raise UserError(f"--encoder {model}: not a model of one input ({', '.join(sorted(ENCODERS))})")
    missing = [n for n in names if n not in given]
    if missing:
        raise UserError(f"--encoder names no model for input {missing[0]}")
    return {n: given[n] for n in names}


def encoder_config(model, n_elec, n_bands, n_times, drop):
    """An encoder's config at its defaults, for an input (C, F, T)."""
    cls = ENCODERS[model]
    config = {"name": model, "n_elec": n_elec, "n_bands": n_bands, "n_outputs": 1, "drop": drop,
              **{o.name: o.default for o in cls.options}}
    if getattr(cls, "fixed_frames", False):
        config["n_times"] = n_times
    resolve = getattr(cls, "resolve_options", None)
    return resolve(config, n_times) if resolve is not None else config


def build_encoder(config):
    """An encoder from its config, without its own head (fusion has one): -> (module, D)."""
    enc = ENCODERS[config["name"]](**{k: v for k, v in config.items() if k != "name"})
    width = enc.n_features
    enc.head = nn.Identity()
    return enc, width


class Fusion(Model):
    """What the three share: the config, the inputs' checks, modality dropout's draw."""
    multi_input = True
    per_frame = False
    recipe = ()             # recipe_for(flags): the encoders'
    closed_form = True      # whether a closed-form head may do all the training (attention fusion: no)
    options = (
        Option("encoder", str, "minirocket", "model of each input (late and attention fusion) or of the stack "
               "(early): a name, or NAME=MODEL,... per input (MiniRocket's head is solved in closed form)",
               flag="--encoder"),
        Option("modality_drop", number(float, 0, 1, high_open=True), 0.0, "probability that training drops each "
               "input of a window, so that the model still predicts with a sensor missing", flag="--modality-drop"),
    )

    @classmethod
    def recipe_for(cls, flags):
        """The recipe of the encoder(s) when they share one (one epoch for MiniRocket's closed-form
        head; attention fusion trains its attention, so none), else none."""
        text = getattr(flags, "encoder", None) or cls.options[0].default
        models = set(text.values() if isinstance(text, dict) else [p.split("=")[-1] for p in text.split(",")])
        recipes = {ENCODERS[m].recipe for m in models if m in ENCODERS}
        return recipes.pop() if len(recipes) == 1 and cls.closed_form else ()

    @staticmethod
    def resolve_options(config, n_times=None):
        """The model contract's hook: every encoder's config, at its defaults, recorded."""
        mods = config["modalities"]
        if config.get("encoders") is None:
            names = encoder_names(config.get("encoder", "minirocket"), list(mods))
            config["encoders"] = {n: encoder_config(names[n], m["n_elec"], m["n_bands"], m["n_times"],
                                                    config["drop"]) for n, m in mods.items()}
        return config

    def modalities_problem(self, shapes):
        """{name: (C, F, T)} -> why those inputs will not fit, or None."""
        mods = self.config["modalities"]
        unknown = [n for n in shapes if n not in mods]
        if unknown:
            return f"input {unknown[0]} is not one the model was trained on ({', '.join(mods)})"
        missing = [n for n in mods if n not in shapes]
        if missing and not self.config["modality_drop"]:
            return (f"input {missing[0]} is missing, and the model was trained without --modality-drop: "
                    f"give every input ({', '.join(mods)})")
        if not shapes:
            return "no input given"
        for name, (c, f, t) in shapes.items():
            m = mods[name]
            if (c, f, t) != (m["n_elec"], m["n_bands"], m["n_times"]):
                return (f"input {name}: windows are (C, F, T) = {(c, f, t)}, the model takes "
                        f"{(m['n_elec'], m['n_bands'], m['n_times'])}")
        return None

    @property
    def n_features(self):
        return self.head[-1].in_features

    def keep_masks(self, x):
        """Training with modality dropout: {name: (B,) bool, True where the input is kept}, at least
        one input kept in every window; None otherwise."""
        p = self.config["modality_drop"]
        if not self.training or p <= 0:
            return None
        names = list(x)
        b = x[names[0]].shape[0]
        device = x[names[0]].device
        keep = torch.rand(b, len(names), device=device) >= p
        none = ~keep.any(1)
        rescue = torch.randint(len(names), (b,), device=device)
        keep[none, rescue[none]] = True
        return {n: keep[:, i] for i, n in enumerate(names)}

    def fit_data(self, x, seed=0):
        for name, enc in self.encoders.items():
            if hasattr(enc, "fit_data") and name in x:
                enc.fit_data(x[name], seed=seed)


class LateFusion(Fusion):
    """One encoder per input; embeddings side by side; one linear head."""
    name = "fusion-late"

    def __init__(self, modalities, n_outputs, drop=0.1, encoder="minirocket", modality_drop=0.0, encoders=None):
        self.record(locals())
        super().__init__()
        self.encoders = nn.ModuleDict()
        widths = {}
        for name, config in (encoders or {}).items():
            self.encoders[name], widths[name] = build_encoder(config)
        self.widths = widths
        # what stands in for an input that is absent (modality dropout, a missing sensor)
        # (learned only with modality dropout; without it no window is ever absent in training, and
        # a parameter that gets no gradient would stall DistributedDataParallel)
        self.absent = nn.ParameterDict({n: nn.Parameter(torch.zeros(d), requires_grad=modality_drop > 0)
                                        for n, d in widths.items()})
        self.register_buffer("penalty", torch.zeros((), dtype=torch.float64))
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(sum(widths.values()), n_outputs))
        # per-frame fusion (streaming) when every encoder has per-frame outputs: an instance's own
        # per_frame (the class's stays False: a task that needs frames cannot count on it)
        if self.encoders and all(getattr(e, "per_frame", False) for e in self.encoders.values()):
            self.per_frame = True

    def features(self, x):
        """x {name: (B, C_m, F_m, T_m)} (a name left out: absent) -> (B, sum of D_m)."""
        keep = self.keep_masks(x)
        b = next(iter(x.values())).shape[0]
        parts = []
        for name, enc in self.encoders.items():
            absent = self.absent[name].expand(b, -1)
            if name not in x:
                parts.append(absent)
                continue
            emb = enc.features(x[name]).float()
            parts.append(emb if keep is None else torch.where(keep[name][:, None], emb, absent))
        return torch.cat(parts, 1)

    def forward(self, x):
        """x {name: (B, C_m, F_m, T_m)} -> (B, K)."""
        return self.head(self.features(x))

    def features_seq(self, x):
        """Per-frame fusion: x {name: (B, C_m, F_m, T_m)} -> (B, T'_o, sum of D_m), one row per frame
        of the input with the fewest output frames (T'_o, the coarsest clock); at its frame j every
        input gives its own latest frame by then, ((j + 1) T'_m) // T'_o - 1 (all of them for
        inputs whose rates are whole multiples of the slowest's). The last row is features(x)."""
        keep = self.keep_masks(x)
        seqs = {n: enc.features_seq(x[n]).float() for n, enc in self.encoders.items() if n in x}
        frames = min(s.shape[1] for s in seqs.values())
        ref = next(iter(seqs.values()))
        parts = []
        for name in self.encoders:
            absent = self.absent[name].expand(len(ref), frames, -1)
            if name not in seqs:
                parts.append(absent)
                continue
            seq = seqs[name]
            at = (torch.arange(1, frames + 1, device=seq.device) * seq.shape[1]) // frames - 1
            seq = seq[:, at]
            parts.append(seq if keep is None else torch.where(keep[name][:, None, None], seq, absent))
        return torch.cat(parts, -1)

    def forward_seq(self, x):
        """x {name: (B, C_m, F_m, T_m)} -> per-frame outputs (B, T'_o, K) (features_seq)."""
        return self.head(self.features_seq(x))

    def stepper(self, frames=None, inputs=None):
        """forward_seq stepped through time, each input at its own rate (biosig/models/fusion_step.py);
        per-frame encoders only. inputs: the names streamed (default all; the others absent)."""
        from .fusion_step import FusionStepper
        if not self.per_frame:
            raise ValueError("late fusion steps through time only with per-frame encoders (tcn, eeg2arm)")
        return FusionStepper(self, frames, inputs)

    def export_module(self):
        """An eval forward that torch.export and ONNX can trace (biosig.export), every input given:
        each encoder's own export form where it has one (MiniRocket's), the same numbers."""
        return ExportForward(self, {n: _exported(e) for n, e in self.encoders.items()},
                             lambda parts, x: torch.cat([parts[n](x[n]).float() for n in parts], 1))

    # closed-form head, when every encoder solves its own so (MiniRocket and kin)
    def head_windows(self, n):
        return all(getattr(enc, "head_windows", None) is not None and enc.head_windows(n)
                   for enc in self.encoders.values())

    @torch.no_grad()
    def head_features(self, x):
        return torch.cat([enc.head_features(x[n]).float() for n, enc in self.encoders.items()], 1)

    @torch.no_grad()
    def fit_head(self, features, targets, weights=None):
        """The ridge head on every training window's embeddings (N, D); an absent input's
        embedding is its training mean (what a least-squares head expects in its place)."""
        solved = solve_into(self.head[-1], self.penalty, features, targets, weights)
        start = 0
        for name, d in self.widths.items():
            self.absent[name].copy_(features[:, start:start + d].mean(0).to(self.absent[name]))
            start += d
        return solved

    def fixed_parameters(self):
        return list(self.head.parameters()) + list(self.absent.parameters()) if float(self.penalty) > 0 else []


def _exported(encoder):
    """An encoder's features in a form torch.export traces: its export_module (whose head, the
    fusion's Identity, leaves the features) or its features()."""
    return encoder.export_module() if hasattr(encoder, "export_module") else _Features(encoder)


class _Features(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder.features(x)


class ExportForward(nn.Module):
    """A fusion model's eval forward, x {name: (B, C_m, F_m, T_m)} -> (B, K), from `parts` (the
    encoders' traceable forms) joined by `embed(parts, x)` -> (B, D), then the model's head."""

    def __init__(self, model, parts, embed):
        super().__init__()
        self.model, self.parts, self.embed = model, nn.ModuleDict(parts), embed

    def forward(self, x):
        return self.model.head(self.embed(self.parts, x))
