"""Classification: one integer label in [0, K-1] per window; the model gives (B, K) logits."""
import json
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import UserError, number, one_of, warn
from .metrics import classification_report, format_confusion
from ..declare import PATH, RUN, Option
from .base import Task


@dataclass(eq=False)
class Classification(Task):
    name = "classification"
    target_kind = "integer"
    monitors = {"val_loss": "min", "val_acc": "max", "val_f1": "max", "val_balanced_acc": "max"}
    default_monitor = "val_loss"
    select_by = "val_acc"
    options = (
        Option("n_classes", number(int, 2), None, "number of classes K (default: max label + 1)",
               flag="--classes", dest="classes"),
        Option("class_names", str, None, "JSON list of K class names, stored in the checkpoint",
               flag="--class-names", kinds=frozenset({PATH, RUN})),
        Option("label_smoothing", number(float, 0, 1, high_open=True), 0.0, "label smoothing of the "
               "cross-entropy: the target puts this much probability evenly on all classes", flag="--label-smoothing"),
        Option("class_weights", one_of("none", "balanced"), "none", "none, or balanced: each class's loss weighted by "
               "N / (K x its windows in --y), so rare classes count as much as common ones", flag="--class-weights"),
    )

    n_classes: int
    class_names: list[str] | None = None
    label_smoothing: float = 0.0
    class_weights: list[float] | None = None        # K floats, or None

    def __str__(self):
        return f"{self.n_classes} classes"

    @property
    def n_outputs(self):
        return self.n_classes

    # ----------------------------------------------------------------------- targets

    @classmethod
    def from_targets(cls, values, targets):
        """K from --classes, or from the largest label of all labelled data (so a class missing
        from training is still a class); every set checked. A class no window has (labels 1..K,
        one typo 7 among 0..2) would silently train a phantom class: refused, unless --classes
        says so on purpose."""
        explicit = values.get("n_classes")
        (y, where), others = targets[0], targets[1:]
        task = cls(explicit or max(int(t.max()) for t, _ in targets) + 1)
        task.check_targets(y, where, min_classes=2)
        for t, w in others:
            task.check_targets(t, w)
        check_empty_classes(targets, task.n_classes, explicit, where)
        if values.get("class_names"):
            task.class_names = _read_class_names(values["class_names"], task.n_classes)
        task.label_smoothing = values.get("label_smoothing") or 0.0
        if values.get("class_weights") == "balanced":
            train_counts = np.bincount(y, minlength=task.n_classes)
            task.class_weights = [len(y) / (task.n_classes * max(1, int(n))) for n in train_counts]
        return task

    def check_targets(self, y, where, source=None, min_classes=1, shape_checked=False):
        """Labels (N,) (segmentation: (N, T), shape_checked) in [0, K-1] with at least
        `min_classes` distinct values; `source` says where K came from in the message
        (default "--classes K")."""
        if not shape_checked and y.ndim != 1:
            raise UserError(f"{where}: expected 1-D labels (N,), got shape {tuple(y.shape)} (a label per frame: "
                            f"--task segmentation; several real-valued targets: --task regression)")
        if y.min() < 0:
            raise UserError(f"{where}: negative label {int(y.min())}; labels must be in [0, K-1]")
        if int(y.max()) >= self.n_classes:
            raise UserError(f"{where}: label {int(y.max())} is outside [0, {self.n_classes - 1}] for "
                            f"{source or f'--classes {self.n_classes}'}")
        if len(np.unique(y)) < min_classes:
            raise UserError(f"{where}: only one class ({int(np.ravel(y)[0])}) present; need at least two to train "
                            f"a classifier")
        return y

    def strata(self, y):
        return y

    def describe_targets(self, y):
        return {"class_counts": np.bincount(y, minlength=self.n_classes).tolist()}

    def split_text(self, train, val):
        return f"classes train {train['class_counts']} val {val['class_counts']}"

    @staticmethod
    def example_data(n, c, f, t, seed=0, k=3, noise=0.8):
        """(X (n, c, f, t) float32, y (n,) int64) with real signal, for tests and examples:
        class j adds a sinusoid of frequency j + 1 to channel j % c, under Gaussian noise."""
        rng = np.random.default_rng(seed)
        y = np.arange(n) % k
        rng.shuffle(y)
        X = rng.normal(0, noise, size=(n, c, f, t)).astype(np.float32)
        frames = np.arange(t)
        for cls in range(k):
            wave = np.sin(2 * np.pi * (cls + 1) * frames / t * 2).astype(np.float32)
            X[y == cls, cls % c, :, :] += 1.5 * wave
        return X, y.astype(np.int64)

    # ---------------------------------------------------------------------- training

    def loss_sum(self, outputs, targets):
        weight = None if self.class_weights is None else torch.tensor(self.class_weights, device=outputs.device)
        return F.cross_entropy(outputs.float(), targets, weight=weight, reduction="sum",
                               label_smoothing=self.label_smoothing)

    def least_squares(self, targets):
        """One-vs-rest targets, +1 for the window's class and -1 for the others (the ridge
        classifier of Rocket and MiniRocket), each window weighted by its class's weight."""
        y = -torch.ones(len(targets), self.n_classes, dtype=torch.float64, device=targets.device)
        y[torch.arange(len(targets), device=targets.device), targets] = 1.0
        weights = None if self.class_weights is None else torch.tensor(
            self.class_weights, dtype=torch.float64, device=targets.device)[targets]
        return y, weights

    def batch_stats(self, outputs, targets):
        """Numbers summed over a training epoch: correct predictions."""
        return {"correct": (outputs.argmax(1) == targets).sum()}

    def train_metrics(self, sums, n):
        return {"acc": sums["correct"] / max(n, 1)}

    def report(self, outputs, targets):
        """outputs (N, K) logits, targets (N,) -> metrics dict (without the loss)."""
        probs = torch.softmax(torch.as_tensor(outputs, dtype=torch.float32), dim=1).numpy()
        return classification_report(probs, np.asarray(targets), self.n_classes)

    def row(self, prefix, metrics):
        keys = ("acc",) if prefix == "train" else ("acc", "f1", "balanced_acc", "auroc")
        return {f"{prefix}_{k}": metrics[k] for k in keys}

    def brief(self, metrics, full=False):
        keys = [k for k in ("acc", "f1") + (("balanced_acc",) if full else ()) if k in metrics]
        return " ".join(f"{k}={metrics[k]:.4f}" for k in keys)

    # --------------------------------------------------------------------- inference

    def values(self, outputs, n_frames=None, softmax=True):
        """outputs (B, K) -> "values" (B, K), probabilities (or logits), in torch ops (export bakes them in)."""
        return torch.softmax(outputs.float(), -1) if softmax else outputs.float()

    def predict(self, outputs, targets=None, n_frames=None, softmax=True):
        """outputs (B, K) (or (B, T', K)) -> {"pred" (B,), "score" (B,): argmax and its value,
        "values" (B, K): probabilities or logits} numpy; "values" is what preds.npy holds."""
        values = self.values(outputs, n_frames, softmax)
        score, pred = values.max(-1)
        return {"pred": pred.numpy(), "score": score.numpy(), "values": values.numpy()}

    def prediction_line(self, i, p, softmax=True):
        """p: one window's row of predict()."""
        pred = int(p["pred"])
        name = f" ({self.class_names[pred]})" if self.class_names else ""
        return f"[sample {i}] pred={pred} {'conf' if softmax else 'logit'}={p['score']:.4f}{name}"

    def prediction_fields(self, pred):
        fields = {"pred": int(pred)}
        if self.class_names:
            fields["pred_name"] = self.class_names[pred]
        return fields

    def records(self, p, softmax=True, flat=False):
        """preds.csv (flat: one column per class) / preds.jsonl rows, one per window."""
        kind = "prob" if softmax else "logit"
        names = self.class_names or range(self.n_classes)
        for i in range(len(p["pred"])):
            row = {"sample": i, **self.prediction_fields(p["pred"][i]), "score": float(p["score"][i])}
            if flat:
                row.update({f"{kind}_{c}": float(v) for c, v in zip(names, p["values"][i])})
            else:
                row[kind] = p["values"][i].tolist()
            yield row

    def scores(self, p, y, softmax=True):
        """infer.py --y: {"n", "accuracy", "macro_f1", "balanced_acc", "auroc" (None when fewer
        than two classes occur), "class_names" (K), "per_class" {precision, recall, f1, support}
        (K each), "confusion" (K, K) true down, predicted across} in plain numbers; {} without y."""
        if y is None:
            return {}
        values = p["values"]
        probs = values if softmax else torch.softmax(torch.as_tensor(values), 1).numpy()
        rep = classification_report(probs, y, self.n_classes)
        return {"n": int(len(y)), "accuracy": rep["acc"], "macro_f1": rep["f1"], "balanced_acc": rep["balanced_acc"],
                "auroc": rep["auroc"], "class_names": list(self.class_names or map(str, range(self.n_classes))),
                "per_class": rep["per_class"], "confusion": rep["confusion"]}

    def report_lines(self, scores):
        """scores() as text: the metrics' line and the confusion matrix."""
        if not scores:
            return []
        s = scores
        auroc = f"{s['auroc']:.4f}" if s["auroc"] is not None else "n/a"
        return [f"accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f} balanced_acc={s['balanced_acc']:.4f} "
                f"auroc={auroc} (n={s['n']})", format_confusion(s["confusion"], s["class_names"])]


def check_empty_classes(targets, n_classes, explicit, where, unit="window"):
    """A class between 0 and K-1 that no label has (labels 1..K, a typo 7 among 0..2) would train
    a phantom class: refused, unless --classes K (explicit) says so on purpose (one warning)."""
    counts = sum(np.bincount(np.ravel(t), minlength=n_classes) for t, _ in targets)
    empty = [k for k in range(n_classes) if counts[k] == 0]
    if empty and explicit is None:
        raise UserError(f"{where}: no {unit} has class {', '.join(map(str, empty))} of 0..{n_classes - 1}: "
                        f"{_why_empty(empty, counts, unit)} (or give --classes {n_classes} to train with empty "
                        f"classes)")
    if empty:
        warn(f"{where}: no {unit} has class {', '.join(map(str, empty))} of --classes {n_classes}; "
             f"the model will have {len(empty)} empty class(es)")


def _why_empty(empty, counts, unit="window"):
    """A one-line guess at why classes are empty: 1-based labels, or a typo beyond a gap."""
    if empty == [0]:
        return f"labels 1..{len(counts) - 1} look 1-based (as MATLAB exports): subtract 1"
    top = len(counts) - 1
    return (f"label {top} ({int(counts[top])} {unit}{'s' if counts[top] != 1 else ''}) lies beyond the gap: "
            f"a typo, or classes numbered with gaps: renumber them 0..K-1")


def _read_class_names(path, n_classes):
    try:
        with open(path) as fh:
            names = json.load(fh)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read class names ({e})") from None
    if not (isinstance(names, list) and all(isinstance(s, str) for s in names)):
        raise UserError(f"{path}: expected a JSON list of {n_classes} class-name strings")
    if len(names) != n_classes:
        raise UserError(f"{path}: {len(names)} class name{'s' if len(names) != 1 else ''} for {n_classes} classes; "
                        f"give one name per class, in label order 0..{n_classes - 1}")
    return names
