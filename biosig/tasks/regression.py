"""Regression: D real-valued targets per window (heart rate from PPG, joint angles from IMU).

Targets y (N,) or (N, D). The model gives (B, D) outputs in standardized units: the targets'
mean and standard deviation are fitted on the training split (--target-scale standard, the
default), stored in the checkpoint, and predictions come back in the targets' own units.
"""
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import UserError, one_of
from .metrics import regression_report
from ..declare import Option
from .base import Task, check_array

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


@dataclass(eq=False)
class Regression(Task):
    name = "regression"
    target_kind = "float"
    monitors = {"val_loss": "min", "val_mae": "min", "val_rmse": "min", "val_r2": "max"}
    default_monitor = "val_mae"
    select_by = "val_r2"
    options = (
        Option("loss", one_of(*LOSSES), "mse", "regression loss on standardized targets: mse, l1 or huber "
               "(delta 1 standard deviation)", flag="--loss"),
        Option("target_scale", one_of("standard", "none"), "standard", "regression targets: standard (z-scored "
               "with the training split's mean and std, predictions returned in the targets' units) or none",
               flag="--target-scale"),
    )

    n_targets: int
    vector: bool = True
    loss: str = "mse"
    target_scale: str = "standard"
    mean: list[float] | None = None         # None: zeros (fit() sets the training split's)
    std: list[float] | None = None          # None: ones

    def __post_init__(self):
        self.mean = self.mean if self.mean is not None else [0.0] * self.n_targets
        self.std = self.std if self.std is not None else [1.0] * self.n_targets

    def __str__(self):
        return f"{self.n_targets} regression target{'s' if self.n_targets > 1 else ''}"

    @property
    def n_outputs(self):
        return self.n_targets

    # ----------------------------------------------------------------------- targets

    @classmethod
    def from_targets(cls, values, targets):
        y, where = targets[0]
        check_array(y, (1, 2), where, "regression targets (N,) or (N, D)")
        task = cls(1 if y.ndim == 1 else y.shape[1], vector=y.ndim == 2, loss=values.get("loss") or "mse",
                   target_scale=values.get("target_scale") or "standard")
        for t, w in targets:
            task.check_targets(t, w)
        return task

    def fit(self, y, where):
        """The training split's targets (N, D) -> the mean/std the loss standardizes with."""
        y = self._2d(y)
        std = y.std(axis=0)
        if (std == 0).any():
            d = int(np.flatnonzero(std == 0)[0])
            which = f"target column {d} is {y[0, d]:g}" if self.vector else f"target is {y[0, d]:g}"
            raise UserError(f"{where}: in every training window the {which}: nothing to learn")
        if self.target_scale == "standard":
            self.mean, self.std = y.mean(axis=0).tolist(), std.tolist()

    def check_targets(self, y, where, source=None):
        check_array(y, (1, 2), where, "regression targets (N,) or (N, D)")
        d = 1 if y.ndim == 1 else y.shape[1]
        if d != self.n_targets or (y.ndim == 2) != self.vector:
            want = f"(N, {self.n_targets})" if self.vector else "(N,)"
            raise UserError(f"{where}: targets of shape {tuple(y.shape)}, but {source or 'the training targets'} "
                            f"are {want}")
        return y

    @staticmethod
    def _2d(y):
        return np.asarray(y, np.float64).reshape(len(y), -1)

    def describe_targets(self, y):
        y = self._2d(y)
        return {"mean": y.mean(axis=0).round(6).tolist(), "std": y.std(axis=0).round(6).tolist()}

    def split_text(self, train, val):
        return f"targets mean train {train['mean']} val {val['mean']}"

    @staticmethod
    def example_data(n, c, f, t, seed=0, d=2, noise=0.5):
        """(X (n, c, f, t) float32, y (n, d) float64): each channel carries a level (an offset
        in [-1, 1]) under Gaussian noise, and target j is a fixed linear map of the levels."""
        rng = np.random.default_rng(seed)
        levels = rng.uniform(-1, 1, size=(n, c))
        X = (rng.normal(0, noise, size=(n, c, f, t)) + levels[:, :, None, None]).astype(np.float32)
        weights = np.arange(1, c * d + 1, dtype=np.float64).reshape(c, d) * np.where(np.arange(c) % 2, -1, 1)[:, None]
        return X, levels @ weights + 10.0 * np.arange(1, d + 1)

    # ---------------------------------------------------------------------- training

    def _units(self, outputs):
        """Standardized outputs (B, D) -> the targets' units."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=outputs.device)
        std = torch.tensor(self.std, dtype=torch.float32, device=outputs.device)
        return outputs.float() * std + mean

    def _scaled(self, targets):
        mean = torch.tensor(self.mean, dtype=torch.float32, device=targets.device)
        std = torch.tensor(self.std, dtype=torch.float32, device=targets.device)
        return (targets.reshape(len(targets), -1).float() - mean) / std

    def loss_sum(self, outputs, targets):
        """The loss over the D standardized targets, averaged over D, summed over windows."""
        per = LOSSES[self.loss](outputs.float(), self._scaled(targets), reduction="none")
        return per.mean(1).sum()

    def least_squares(self, targets):
        """The standardized targets the loss compares outputs with (least squares is the mse loss;
        for huber and l1 it is the closed-form start they do not refine)."""
        return self._scaled(targets).double(), None

    def batch_stats(self, outputs, targets):
        """Absolute error in the targets' units, averaged over D, summed over windows."""
        return {"abs_err": (self._units(outputs) - targets.reshape(len(targets), -1).float()).abs().mean(1).sum()}

    def train_metrics(self, sums, n):
        return {"mae": sums["abs_err"] / max(n, 1)}

    def report(self, outputs, targets):
        pred = self._units(torch.as_tensor(outputs)).numpy()
        return regression_report(pred, self._2d(targets))

    def examples(self, outputs, targets, n=2000):
        """The run report's predicted-vs-true scatter: up to n windows, evenly spaced ->
        {"scatter_true", "scatter_pred"} (n, D) in the targets' units."""
        pred, true = self._units(torch.as_tensor(outputs)).numpy(), self._2d(np.asarray(targets))
        keep = np.unique(np.linspace(0, len(pred) - 1, min(n, len(pred))).astype(int))
        return {"scatter_true": true[keep], "scatter_pred": pred[keep]}

    def row(self, prefix, metrics):
        keys = ("mae",) if prefix == "train" else ("mae", "rmse", "r2", "r")
        return {f"{prefix}_{k}": metrics[k] for k in keys}

    def brief(self, metrics, full=False):
        keys = [k for k in ("mae", "r2") + (("rmse", "r") if full else ()) if k in metrics]
        return " ".join(f"{k}={metrics[k]:.4f}" for k in keys)

    # --------------------------------------------------------------------- inference

    def values(self, outputs, n_frames=None, softmax=True):
        """outputs (B, D) standardized -> "values" in the targets' units, (B, D) or (B,) for
        targets given as (N,), in torch ops (export bakes them in)."""
        values = self._units(outputs)
        return values if self.vector else values[:, 0]

    def predict(self, outputs, targets=None, n_frames=None, softmax=True):
        """outputs (B, D) -> {"pred", "values"}: (B, D), or (B,) for targets given as (N,), in
        the targets' units."""
        values = self.values(outputs).numpy()
        return {"pred": values, "values": values}

    def prediction_line(self, i, p, softmax=True):
        pred = p["pred"]
        shown = "[" + ", ".join(f"{v:.4g}" for v in pred) + "]" if self.vector else f"{pred:.4g}"
        return f"[sample {i}] pred={shown}"

    def records(self, p, softmax=True, flat=False):
        for i in range(len(p["values"])):
            row = {"sample": i}
            if not self.vector:
                row["pred"] = float(p["values"][i])
            elif flat:
                row.update({f"pred_{d}": float(v) for d, v in enumerate(p["values"][i])})
            else:
                row["pred"] = p["values"][i].tolist()
            yield row

    def scores(self, p, y, softmax=True):
        """infer.py --y: {"n", "n_targets", "mae", "rmse", "r2", "r" (each the mean over the
        targets, in their units), "per_target" {mae, rmse, r2, r} (D each; r2 and r None for a
        target without variance)} in plain numbers; {} without y."""
        if y is None:
            return {}
        rep = regression_report(self._2d(p["values"]), self._2d(y))
        return {"n": int(len(y)), "n_targets": self.n_targets, "mae": rep["mae"], "rmse": rep["rmse"], "r2": rep["r2"],
                "r": rep["r"], "per_target": rep["per_target"]}

    def report_lines(self, scores):
        """scores() as text: the means' line, and a line per target for vector targets."""
        if not scores:
            return []
        s = scores
        lines = [f"mae={s['mae']:.4g} rmse={s['rmse']:.4g} r2={s['r2']:.4f} r={s['r']:.4f} (n={s['n']}"
                 + (f", mean over {self.n_targets} targets)" if self.vector else ")")]
        if self.vector:
            per = s["per_target"]
            for d in range(self.n_targets):
                r2 = "n/a" if per["r2"][d] is None else f"{per['r2'][d]:.4f}"
                r = "n/a" if per["r"][d] is None else f"{per['r'][d]:.4f}"
                lines.append(f"  target {d}: mae={per['mae'][d]:.4g} rmse={per['rmse'][d]:.4g} r2={r2} r={r}")
        return lines
