"""Several targets at once: one shared network, one head per target, a weighted sum of the
members' losses (--y hr=hr.npy --y act=act.npy --task hr=regression --task act=classification
--loss-weight hr=1,act=0.5).

MultiTask holds the member tasks by target name and speaks the Task contract for them all, so the
run and the loop need no branch for it. The model is built with the members' outputs side by side
(n_outputs = K_1 + K_2 + ...): its last layer is then every member's linear head at once, and
MultiHead cuts its outputs into one slice per target. Targets, outputs and metrics are dicts by
target name; a metric is "NAME:metric" (act:val_f1) in the epoch line, metrics.jsonl and
summary.json, the total loss stays val_loss.

A member that learns per frame (segmentation) asks the model for per-frame outputs (forward_seq);
the window members then take the last frame's output, the one that has seen the whole window
(a per-frame model's forward). A member that changes the network's input (pretraining's masks)
cannot share it: refused.
"""
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .base import Task

SEP = ":"       # "act:val_f1"


def member_tasks(task, y, loss_weight, registry):
    """--task, --y and --loss-weight as given -> {target name: task name}, or None for one target.
    One --task names every target's task; several name each one. Contradictions are one line."""
    named_y, named_task = isinstance(y, dict), isinstance(task, dict)
    if not named_y and not named_task:
        if loss_weight:
            raise UserError("--loss-weight weighs several targets: give --y NAME=PATH for each")
        return None
    if not named_y:
        raise UserError(f"--task {' '.join(f'{k}={v}' for k, v in task.items())}: several tasks need several "
                        f"targets, --y NAME=PATH for each")
    members = dict(task) if named_task else {name: task for name in y}
    for name in set(members) ^ set(y):
        raise UserError(f"--task and --y name different targets: {name} has "
                        f"{'a task but no --y' if name in members else 'a --y but no --task'}")
    for name in loss_weight or {}:
        if name not in members:
            raise UserError(f"--loss-weight {name}: not a target (the targets are {', '.join(members)})")
    for name, kind in members.items():
        if registry[kind].target_kind is None:
            raise UserError(f"--task {name}={kind} learns from the windows alone and cannot share the network's "
                            f"input with other targets: train it alone, then --init from it")
    return {name: members[name] for name in y}


@dataclass(eq=False)
class MultiTask(Task):
    """tasks: target name -> Task; weights: target name -> its weight in the summed loss."""
    name = "multi"
    select_by = None

    tasks: dict
    weights: dict

    @property
    def config(self):
        return {"name": self.name, "tasks": {n: t.config for n, t in self.tasks.items()}, "weights": dict(self.weights)}

    @classmethod
    def from_config(cls, config, build):
        return cls({n: build(c) for n, c in config["tasks"].items()}, dict(config["weights"]))

    def __str__(self):
        return ", ".join(f"{n}: {type(t).name} ({t})" for n, t in self.tasks.items())

    @property
    def needs_per_frame(self):
        return any(t.needs_per_frame for t in self.tasks.values())

    @property
    def monitors(self):
        return {"val_loss": "min", **{f"{n}{SEP}{m}": mode for n, t in self.tasks.items()
                                      for m, mode in t.monitors.items()}}

    default_monitor = "val_loss"

    @property
    def refused_augments(self):
        return {k: v for t in self.tasks.values() for k, v in t.refused_augments.items()}

    @property
    def n_outputs(self):
        return sum(t.n_outputs for t in self.tasks.values())

    def slices(self):
        """target name -> its columns of the model's outputs."""
        out, start = {}, 0
        for n, t in self.tasks.items():
            out[n] = slice(start, start + t.n_outputs)
            start += t.n_outputs
        return out

    # ----------------------------------------------------------------------- targets

    def fit(self, y, where):
        for n, t in self.tasks.items():
            t.fit(y[n], where[n] if isinstance(where, dict) else where)

    def check_targets(self, y, where, source=None):
        for n, t in self.tasks.items():
            t.check_targets(y[n], where[n] if isinstance(where, dict) else where)
        return y

    def network(self, model, shape):
        return MultiHead(model, self.slices(), {n: t.needs_per_frame for n, t in self.tasks.items()})

    def least_squares(self, targets):
        """The members' least-squares targets side by side, when every member has them and none
        weighs its windows (one set of window weights serves every column); else None."""
        parts = [t.least_squares(targets[n]) for n, t in self.tasks.items()]
        if any(p is None or p[1] is not None for p in parts):
            return None
        return torch.cat([p[0].reshape(len(p[0]), -1) for p in parts], 1), None

    def strata(self, y):
        for n, t in self.tasks.items():
            s = t.strata(y[n])
            if s is not None:
                return s
        return None

    def describe_targets(self, y):
        return {n: t.describe_targets(y[n]) for n, t in self.tasks.items()}

    def split_text(self, train, val):
        return "; ".join(f"{n}: {text}" for n, t in self.tasks.items() if (text := t.split_text(train[n], val[n])))

    # ---------------------------------------------------------------------- training

    def loss_sum(self, outputs, targets):
        return sum(self.weights[n] * t.loss_sum(outputs[n], targets[n]) for n, t in self.tasks.items())

    def batch_stats(self, outputs, targets):
        return {f"{n}{SEP}{k}": v for n, t in self.tasks.items()
                for k, v in t.batch_stats(outputs[n], targets[n]).items()}

    def train_metrics(self, sums, n_windows):
        return {f"{n}{SEP}{k}": v for n, t in self.tasks.items()
                for k, v in t.train_metrics(_member(sums, n), n_windows).items()}

    def report(self, outputs, targets):
        """Every member's validation metrics and its own (unweighted) loss, as "NAME:metric"."""
        out = {}
        for n, t in self.tasks.items():
            o, y = torch.as_tensor(outputs[n]), torch.as_tensor(targets[n])
            out[f"{n}{SEP}loss"] = float(t.loss_sum(o, y)) / max(1, len(y))
            out.update({f"{n}{SEP}{k}": v for k, v in t.report(o.numpy(), y.numpy()).items()})
        return out

    def row(self, prefix, metrics):
        row = {}
        for n, t in self.tasks.items():
            mine = _member(metrics, n)
            if prefix != "train":
                row[f"{n}{SEP}{prefix}_loss"] = mine["loss"]
            row.update({f"{n}{SEP}{k}": v for k, v in t.row(prefix, mine).items()})
        return row

    def brief(self, metrics, full=False):
        return " | ".join(f"{n}: {t.brief(_member(metrics, n), full)}" for n, t in self.tasks.items())

    def examples(self, outputs, targets):
        """The run report's examples of every member that has them, "NAME:key"."""
        return {f"{n}{SEP}{k}": v for n, t in self.tasks.items() if hasattr(t, "examples")
                for k, v in t.examples(outputs[n], targets[n]).items()}

    # --------------------------------------------------------------------- inference

    def values(self, outputs, n_frames=None, softmax=True):
        """outputs {name: ...} -> {name: that member's values}, in torch ops (export)."""
        return {n: t.values(outputs[n], n_frames, softmax) for n, t in self.tasks.items()}

    def predict(self, outputs, targets=None, n_frames=None, softmax=True):
        """-> {"NAME:key": (B, ...)}: every member's predict(), flat, so batches concatenate as
        one task's do."""
        return {f"{n}{SEP}{k}": v for n, t in self.tasks.items()
                for k, v in t.predict(outputs[n], None, n_frames, softmax).items()}

    def member_predictions(self, pred):
        """predict()'s flat dict -> {name: that member's own predict() dict}."""
        return {n: _member(pred, n) for n in self.tasks}

    def prediction_line(self, i, p, softmax=True):
        """One window's line: every member's, after one [sample i]."""
        head = f"[sample {i}] "
        return head + " | ".join(f"{n}: {t.prediction_line(i, _member(p, n), softmax)[len(head):]}"
                                 for n, t in self.tasks.items())

    def records(self, p, softmax=True, flat=False):
        """One row per window: flat (.csv) every member's columns as "NAME:column"; else (.jsonl)
        {"sample": i, NAME: that member's row}."""
        members = {n: t.records(_member(p, n), softmax, flat) for n, t in self.tasks.items()}
        for rows in zip(*members.values()):
            row = {"sample": rows[0]["sample"]}
            for n, r in zip(members, rows):
                mine = {k: v for k, v in r.items() if k != "sample"}
                row.update({f"{n}{SEP}{k}": v for k, v in mine.items()} if flat else {n: mine})
            yield row

    def scores(self, p, y, softmax=True):
        """{name: that member's scores} for the targets given (y {name: (B, ...)} or None)."""
        y = y or {}
        return {n: s for n, t in self.tasks.items() if (s := t.scores(_member(p, n), y.get(n), softmax))}

    def report_lines(self, scores):
        return [f"{n}: {line}" for n, t in self.tasks.items() if n in scores for line in t.report_lines(scores[n])]


def _member(flat, name):
    """{"NAME:key": v, ...} -> {key: v} of one member."""
    cut = len(name) + len(SEP)
    return {k[cut:]: v for k, v in flat.items() if k.startswith(name + SEP)}


class MultiHead(nn.Module):
    """The model's outputs cut into one slice per target: x -> {name: (B, K_n)} (per-frame
    members: (B, T', K_n), the window members then the last frame's). It has no tensors of its
    own: the model's last layer is every member's head."""

    def __init__(self, model, slices, per_frame):
        super().__init__()
        self.model, self.slices, self.per_frame = model, slices, per_frame
        if any(per_frame.values()) and not getattr(model, "per_frame", False):
            raise UserError(f"a per-frame target needs a model with per-frame outputs (forward_seq); "
                            f"{model.config['name']} gives one output per window")

    def forward(self, x):
        if any(self.per_frame.values()):
            seq = self.model.forward_seq(x)
            return {n: seq[..., s] if self.per_frame[n] else seq[:, -1, s] for n, s in self.slices.items()}
        out = self.model(x)
        return {n: out[:, s] for n, s in self.slices.items()}
