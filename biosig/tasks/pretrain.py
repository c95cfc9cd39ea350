"""Masked-reconstruction pretraining: learn from windows without labels, then fine-tune
(train.py --init pretrained.pt) on the few that have them.

Spans of --mask-span frames are masked (set to 0, the mean once --standardize is on) with
probability --mask-ratio each, at least one per window; the model reads the masked window and
a light decoder (two 1-D convolutions over its per-frame outputs, the first seeing two output
frames on either side) reconstructs every input frame. The decoder is kept narrow on purpose:
the models that can be pretrained are causal, so most masked frames are forecast from the past
by the encoder itself. A decoder wide enough to see past a whole span interpolates by itself,
and the encoder learns less: on the synthetic set of tests/test_tasks.py, fine-tuning after it
scored 0.56 (mean of 3 label draws) against 0.83 after this one, and 0.69 from scratch. The loss is the squared error on
the masked frames only. The masks are a hash of (window index, span, salt): validation and
inference use salt 0, so every epoch, rank and run scores the same frames; training draws one
salt per step from a stream that is the same on every rank, so torchrun masks a window exactly
as one process does.

Reported beside the model: linear interpolation across each masked span from its unmasked
neighbours (interp_mse), and predicting 0 (zero_mse): a model that does not beat interpolation
has learnt little. Only models with per-frame outputs (forward_seq) can be pretrained; --model auto
takes tcn (biosig/training/auto.py), whose levels follow the window, so its last frame sees all of it.
"""
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from ..errors import UserError, number, positive_int
from ..declare import Option
from .base import Task, frame_step
from .classification import Classification

_M = 0x7FFFFFFF


def _mix(h):
    """An integer hash of int64 tensors in [0, 2^31), exact on every device (no overflow)."""
    h = ((h ^ (h >> 16)) * 0x45D9F3B) & _M
    h = ((h ^ (h >> 16)) * 0x45D9F3B) & _M
    return h ^ (h >> 16)


def span_mask(ids, n_frames, span, ratio, salt=0):
    """ids (B,) window indices -> (B, T) bool: which frames are masked, spans of `span` frames
    each masked with probability `ratio` (at least one per window), a function of
    (id, span, salt) alone."""
    blocks = torch.arange(-(-n_frames // span), device=ids.device)
    key = _mix((ids.long() * 0x9E37 + salt) & _M)
    u = _mix((key[:, None] + blocks[None, :] * 0x632B) & _M).double() / 2 ** 31       # (B, blocks) in [0, 1)
    masked = u < ratio
    masked[torch.arange(len(ids), device=ids.device), u.argmin(1)] = True
    return masked.repeat_interleave(span, dim=1)[:, :n_frames]


class Reconstruct(nn.Module):
    """A per-frame model and a light decoder: masked x (B, C, F, T) -> reconstruction
    (B, C, F, T' s) of every input frame its T' output frames cover."""

    def __init__(self, model, c, f, t, width):
        super().__init__()
        self.model = model
        was = model.training
        with torch.no_grad():
            model.eval()
            self.step = frame_step(t, model.forward_seq(torch.zeros(1, c, f, t)).shape[1])
        model.train(was)
        self.rows = (c, f)
        self.decoder = nn.Sequential(nn.GELU(), nn.Conv1d(width, width, 5, padding=2), nn.GELU(),
                                     nn.Conv1d(width, c * f * self.step, 1))

    def forward(self, x):
        out = self.decoder(self.model.forward_seq(x).transpose(1, 2))      # (B, C F s, T')
        b, _, t_out = out.shape
        c, f = self.rows
        return out.reshape(b, c, f, self.step, t_out).transpose(3, 4).reshape(b, c, f, t_out * self.step)


def interpolate(x, masked):
    """x (C, F, T), masked (T,) bool -> x with each masked frame linearly interpolated from the
    nearest unmasked frames on either side (the nearest one only, at the window's ends)."""
    known, holes = np.flatnonzero(~masked), np.flatnonzero(masked)
    out = x.copy()
    if len(known) == 0:
        out[..., holes] = 0.0
        return out
    pos = np.searchsorted(known, holes)
    left, right = known[np.clip(pos - 1, 0, len(known) - 1)], known[np.clip(pos, 0, len(known) - 1)]
    span = np.where(right > left, right - left, 1)
    w = np.clip((holes - left) / span, 0.0, 1.0)
    out[..., holes] = x[..., left] * (1 - w) + x[..., right] * w
    return out


@dataclass(eq=False)
class Pretrain(Task):
    name = "pretrain"
    target_kind = None
    needs_per_frame = True
    refused_augments = {"mixup": "the reconstruction target would be the mixed window"}
    monitors = {"val_loss": "min", "val_mse": "min"}
    default_monitor = "val_loss"
    options = (
        Option("mask_ratio", number(float, 0, 1, low_open=True, high_open=True), 0.5,
               "pretrain: probability that each span of frames is masked", flag="--mask-ratio"),
        Option("mask_span", positive_int, 8, "pretrain: frames per masked span", flag="--mask-span"),
        Option("width", positive_int, 64, "pretrain: the model's per-frame output size, the decoder's input",
               flag="--decoder-width"),
    )

    mask_ratio: float = 0.5
    mask_span: int = 8
    width: int = 64

    def __str__(self):
        return f"masked reconstruction ({self.mask_ratio:g} of spans of {self.mask_span} frames)"

    @property
    def n_outputs(self):
        return self.width

    @classmethod
    def from_targets(cls, values, targets):
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})     # the rest: defaults

    def check_targets(self, y, where, source=None):
        return y

    def network(self, model, shape):
        if self.mask_span >= shape[-1]:
            raise UserError(f"--mask-span {self.mask_span} masks the whole window of T={shape[-1]} frames; "
                            f"give fewer frames (e.g. {max(1, shape[-1] // 8)})")
        return Reconstruct(model, *shape[1:], self.width)

    def batch(self, x, ids, generator=None):
        """-> (x with its masked frames set to 0, targets (B, 2, C, F, T): x and the mask)."""
        salt = 0 if generator is None else int(torch.randint(1, _M, (1,), generator=generator))
        masked = span_mask(ids, x.shape[-1], self.mask_span, self.mask_ratio, salt)[:, None, None, :]
        target = torch.stack([x, masked.expand_as(x).to(x.dtype)], 1)
        return x.masked_fill(masked, 0.0), target

    @staticmethod
    def example_data(n, c, f, t, seed=0):
        """(X (n, c, f, t), None): the classification example's windows, without their labels."""
        return Classification.example_data(n, c, f, t, seed=seed)[0], None

    # ---------------------------------------------------------------------- training

    @staticmethod
    def _errors(outputs, targets):
        """Per-window mean squared error on the masked frames (B,)."""
        n = outputs.shape[-1]
        x, m = targets[:, 0, ..., :n].float(), targets[:, 1, ..., :n].float()
        return (((outputs.float() - x) ** 2) * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)

    def loss_sum(self, outputs, targets):
        return self._errors(outputs, targets).sum()

    def _baselines(self, targets):
        """(interpolation, zero) per-window masked mean squared errors, numpy (B,) each."""
        targets = np.asarray(targets)
        interp, zero = [], []
        for x, m in zip(targets[:, 0], targets[:, 1]):
            frames = m[0, 0] > 0
            denom = max(1, m.sum())
            interp.append(float((((interpolate(x, frames) - x) ** 2) * m).sum() / denom))
            zero.append(float(((x ** 2) * m).sum() / denom))
        return np.array(interp), np.array(zero)

    def report(self, outputs, targets):
        errors = self._errors(torch.as_tensor(outputs), torch.as_tensor(targets)).numpy()
        interp, zero = self._baselines(targets)
        return {"mse": float(errors.mean()), "interp_mse": float(interp.mean()), "zero_mse": float(zero.mean())}

    def row(self, prefix, metrics):
        return {} if prefix == "train" else {f"{prefix}_{k}": metrics[k] for k in ("mse", "interp_mse", "zero_mse")}

    def brief(self, metrics, full=False):
        if "mse" not in metrics:
            return ""
        return f"mse={metrics['mse']:.4f} (interpolation {metrics['interp_mse']:.4f}, zeros {metrics['zero_mse']:.4f})"

    # --------------------------------------------------------------------- inference

    def predict(self, outputs, targets=None, n_frames=None, softmax=True):
        """-> {"mse" (B,): each window's masked reconstruction error (an anomaly score; what
        preds.npy holds as "values"), "interp_mse" (B,): interpolation's on the same frames}."""
        errors = self._errors(outputs, targets).numpy()
        interp, _ = self._baselines(targets)
        return {"mse": errors, "interp_mse": interp, "values": errors}

    def prediction_line(self, i, p, softmax=True):
        return f"[sample {i}] recon_mse={p['mse']:.4f} interpolation_mse={p['interp_mse']:.4f}"

    def records(self, p, softmax=True, flat=False):
        for i in range(len(p["mse"])):
            yield {"sample": i, "recon_mse": float(p["mse"][i]), "interp_mse": float(p["interp_mse"][i])}

    def scores(self, p, y=None, softmax=True):
        """infer.py: {"n", "mse" (the windows' mean masked reconstruction error), "interp_mse"
        (linear interpolation's on the same frames)}; needs no targets."""
        return {"n": int(len(p["mse"])), "mse": float(p["mse"].mean()), "interp_mse": float(p["interp_mse"].mean())}

    def report_lines(self, scores):
        return [f"masked reconstruction: mse={scores['mse']:.4f} (linear interpolation "
                f"{scores['interp_mse']:.4f}) over {scores['n']} windows"]
