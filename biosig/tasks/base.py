"""What every task shares: the Task defaults, and the per-frame pieces of segmentation and
pretraining (which model may run them, and how output frames map to input frames)."""
from dataclasses import fields

import torch
from torch import nn

from ..errors import UserError


class Task:
    """Defaults of the Task contract (see biosig/tasks/__init__.py); a task overrides what differs.
    A task is a @dataclass(eq=False) (tasks compare by identity, as before) whose fields are its
    settings, declared once: they are its __init__'s arguments and, after its name, its config."""

    options = ()
    target_kind = "integer"
    select_by = None
    needs_per_frame = False      # True: only models with forward_seq (per-frame outputs) fit
    refused_augments = {}        # --augment names this task cannot take -> why (one line)

    @property
    def config(self):
        """What the checkpoint stores: {"name": ..., then every field}; Task(**rest) rebuilds it."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def model_problem(cls, model_cls):
        """Why `model_cls` cannot learn this task (one line), or None."""
        if cls.needs_per_frame and not getattr(model_cls, "per_frame", False):
            from ..models import MODELS
            fit = sorted(n for n, m in MODELS.items() if getattr(m, "per_frame", False))
            return (f"--task {cls.name} needs a model with per-frame outputs (forward_seq): --model "
                    f"{' or '.join(fit)}; {model_cls.name} gives one output per window")
        return None

    def fit(self, y, where):
        """Statistics of the training split's targets (N, ...), before training (none by default);
        `where` names them in errors."""

    def network(self, model, shape):
        """The module trained and saved for this task: `model` itself, or a wrapper around it
        (PerFrame, a decoder) whose own tensors the checkpoint keeps under task_state."""
        return model

    def batch(self, x, y, generator=None):
        """(x, y) of a batch, as read -> (the network's input, the loss's targets). generator:
        training's per-epoch stream, the same on every rank (None: validation, inference)."""
        return x, y

    def least_squares(self, targets):
        """What a closed-form linear head fits the outputs to: loss targets (N, ...) -> (real
        targets (N, n_outputs), window weights (N,) or None), or None when the task has none."""
        return None

    def strata(self, y):
        return None

    def describe_targets(self, y):
        return {}

    def split_text(self, train, val):
        return ""

    def batch_stats(self, outputs, targets):
        return {}

    def train_metrics(self, sums, n):
        return {}


class PerFrame(nn.Module):
    """A per-frame model seen as its forward_seq: x (B, C, F, T) -> (B, T', K)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_seq(x)


def frame_step(n_in, n_out):
    """Input frames per output frame, s = T // T' (2 for eeg2arm's default time pooling, 1 for tcn)."""
    if n_out < 1 or n_in < n_out:
        raise ValueError(f"{n_out} output frames for {n_in} input frames")
    return n_in // n_out


def labels_at_output_frames(y, n_out):
    """Per-input-frame labels y (B, T) -> (B, T'): output frame j covers input frames
    [j s, (j + 1) s) and takes the label of the last of them, (j + 1) s - 1, the newest
    frame a causal model has seen when it emits j. Input frames past T' s are not scored."""
    s = frame_step(y.shape[1], n_out)
    return y[:, s - 1::s][:, :n_out]


def at_input_frames(values, n_in):
    """Per-output-frame values (B, T', ...) -> (B, T, ...): each output frame repeated over the
    s input frames it covers; input frames past T' s take the last output frame."""
    values = torch.as_tensor(values)
    s = frame_step(n_in, values.shape[1])
    up = values.repeat_interleave(s, dim=1)
    if up.shape[1] < n_in:
        up = torch.cat([up, up[:, -1:].expand(-1, n_in - up.shape[1], *up.shape[2:])], dim=1)
    return up


def check_array(y, ndims, where, expect):
    if y.ndim not in ndims:
        raise UserError(f"{where}: expected {expect}, got shape {tuple(y.shape)}")
