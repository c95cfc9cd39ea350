"""What is being learned: the loss, the validation metrics and the prediction rule.

The loop is handed a task and never assumes classification. A task gives
  loss_sum(outputs, targets)     summed (not averaged) loss, so batches split across
                                 processes can be weighted exactly by the global batch size
  report(outputs, targets)       metrics over a whole validation set (numpy in, dict out)
  monitors                       {metric name: "min" | "max"}, and a default
  predict(outputs)               what infer.py prints
Regression and per-frame segmentation tasks slot in beside Classification.
"""
import numpy as np
import torch
from torch.nn import functional as F

from .metrics import classification_report


class Classification:
    """Targets (B,) int64 in [0, K-1]; outputs (B, K) logits."""

    name = "classification"
    monitors = {"val_loss": "min", "val_acc": "max", "val_f1": "max", "val_balanced_acc": "max"}
    default_monitor = "val_loss"
    target_dtype = torch.int64

    def __init__(self, n_classes):
        self.n_classes = n_classes

    @property
    def config(self):
        return {"name": self.name, "n_classes": self.n_classes}

    @property
    def n_outputs(self):
        return self.n_classes

    def loss_sum(self, outputs, targets):
        return F.cross_entropy(outputs.float(), targets, reduction="sum")

    def batch_stats(self, outputs, targets):
        """Numbers summed over a training epoch: correct predictions."""
        return {"correct": (outputs.argmax(1) == targets).sum()}

    def report(self, outputs, targets):
        """outputs (N, K) logits, targets (N,) -> metrics dict (without the loss)."""
        probs = torch.softmax(torch.as_tensor(outputs, dtype=torch.float32), dim=1).numpy()
        return classification_report(probs, np.asarray(targets), self.n_classes)

    def predict(self, outputs, softmax=True):
        """outputs (B, K) -> (pred (B,), score (B,), values (B, K)): argmax, its prob, probs or logits."""
        values = torch.softmax(outputs.float(), 1) if softmax else outputs.float()
        score, pred = values.max(1)
        return pred, score, values


TASKS = {"classification": Classification}


def build_task(config):
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return TASKS[config["name"]](**kwargs)
