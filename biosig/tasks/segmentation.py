"""Per-frame segmentation: one class label per input frame (sleep stages, ECG waves, movement onset).

Targets y (N, T) integers in [0, K-1], T the windows' frame count; class 0 is the background
whose events are not scored. The model's forward_seq gives (B, T', K) logits; output frame j
covers input frames [j s, (j + 1) s), s = T // T', and is trained on the label of its last
input frame (base.labels_at_output_frames). Inference maps back the same way: every input
frame gets the prediction of the output frame that covers it (base.at_input_frames), so
preds are (B, T, K) at the input's T. The checkpoint's task entry says so ("frames").

Metrics: per-frame accuracy, macro-F1, balanced accuracy, the confusion matrix over frames, and
onset detection per positive class (an onset predicted within --onset-tolerance frames of a
true one is a hit): event_f1.
"""
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import nonnegative_int
from .metrics import event_report, format_confusion, frame_report
from ..declare import Option
from .base import PerFrame, Task, at_input_frames, check_array, labels_at_output_frames
from .classification import Classification, _read_class_names, check_empty_classes

FRAMES = "output frame j covers input frames [j*s, (j+1)*s), s = T // T', trained on the label of frame (j+1)*s-1"


@dataclass(eq=False)
class Segmentation(Task):
    name = "segmentation"
    target_kind = "frames"
    needs_per_frame = True
    refused_augments = {"shift": "it moves the frames but not their labels"}
    monitors = {"val_loss": "min", "val_acc": "max", "val_f1": "max", "val_event_f1": "max"}
    default_monitor = "val_loss"
    select_by = "val_f1"
    options = (
        Classification.options[0], Classification.options[1],
        Option("tolerance", nonnegative_int, 5, "segmentation: a predicted onset within this many frames of a "
               "true onset of the same class counts as a hit (event_f1)", flag="--onset-tolerance"),
    )

    n_classes: int
    class_names: list[str] | None = None
    tolerance: int = 5
    frames: str = FRAMES        # how output frames map to input frames, said in the checkpoint

    def __str__(self):
        return f"{self.n_classes} classes per frame"

    @property
    def n_outputs(self):
        return self.n_classes

    @classmethod
    def from_targets(cls, values, targets):
        (y, where) = targets[0]
        for t, w in targets:
            check_array(t, (2,), w, "one label per frame, (N, T)")
        task = cls(values.get("n_classes") or max(int(t.max()) for t, _ in targets) + 1,
                   tolerance=values.get("tolerance", 5))
        task.check_targets(y, where, min_classes=2)
        for t, w in targets[1:]:
            task.check_targets(t, w)
        check_empty_classes(targets, task.n_classes, values.get("n_classes"), where, unit="frame")
        if values.get("class_names"):
            task.class_names = _read_class_names(values["class_names"], task.n_classes)
        return task

    def check_targets(self, y, where, source=None, min_classes=1):
        check_array(y, (2,), where, "one label per frame, (N, T)")
        return Classification.check_targets(self, y, where, source, min_classes, shape_checked=True)

    def network(self, model, shape):
        return PerFrame(model)

    def describe_targets(self, y):
        return {"frame_counts": np.bincount(np.ravel(y), minlength=self.n_classes).tolist()}

    def split_text(self, train, val):
        return f"frames per class train {train['frame_counts']} val {val['frame_counts']}"

    @staticmethod
    def example_data(n, c, f, t, seed=0, k=3, noise=0.6):
        """(X (n, c, f, t) float32, y (n, t) int64): background noise (class 0), and in most
        windows one event of class 1..k-1 at a random onset, lasting t/4 to t/2 frames, during
        which channel j % c carries a sinusoid of period 8 / j frames."""
        rng = np.random.default_rng(seed)
        X = rng.normal(0, noise, size=(n, c, f, t)).astype(np.float32)
        y = np.zeros((n, t), np.int64)
        for i in range(n):
            if i % 5 == 0:          # some windows without an event
                continue
            cls = 1 + i % (k - 1)
            length = int(rng.integers(t // 4, t // 2 + 1))
            onset = int(rng.integers(1, t - length))
            frames = np.arange(length)
            X[i, cls % c, :, onset:onset + length] += 1.5 * np.sin(2 * np.pi * frames * cls / 8).astype(np.float32)
            y[i, onset:onset + length] = cls
        return X, y

    # ---------------------------------------------------------------------- training

    def loss_sum(self, outputs, targets):
        """Cross-entropy over the output frames, averaged over frames, summed over windows."""
        labels = labels_at_output_frames(targets, outputs.shape[1])
        per = F.cross_entropy(outputs.float().transpose(1, 2), labels, reduction="none")     # (B, T')
        return per.mean(1).sum()

    def batch_stats(self, outputs, targets):
        labels = labels_at_output_frames(targets, outputs.shape[1])
        return {"correct": (outputs.argmax(-1) == labels).float().mean(1).sum()}

    def train_metrics(self, sums, n):
        return {"acc": sums["correct"] / max(n, 1)}

    def _frame_labels(self, outputs, n_frames):
        return at_input_frames(torch.as_tensor(outputs).argmax(-1), n_frames).numpy()

    def report(self, outputs, targets):
        """outputs (N, T', K), targets (N, T): scored at the input's frames."""
        pred = self._frame_labels(outputs, targets.shape[1])
        rep = frame_report(targets, pred, self.n_classes)
        rep.update(event_report(targets, pred, range(1, self.n_classes), self.tolerance))
        return rep

    def examples(self, outputs, targets, n=3):
        """The run report's frames: the n windows whose labels change most, in window order ->
        {"frames_true", "frames_pred"} (n, T) labels at the input's frames."""
        true = np.asarray(targets)
        pred = self._frame_labels(outputs, true.shape[1])
        changes = (np.diff(true, axis=1) != 0).sum(1)
        pick = np.sort(np.argsort(-changes, kind="stable")[:n])
        return {"frames_true": true[pick], "frames_pred": pred[pick]}

    def row(self, prefix, metrics):
        keys = ("acc",) if prefix == "train" else ("acc", "f1", "balanced_acc", "event_f1")
        return {f"{prefix}_{k}": metrics[k] for k in keys}

    def brief(self, metrics, full=False):
        keys = [k for k in ("acc", "f1", "event_f1") + (("balanced_acc",) if full else ()) if k in metrics]
        return " ".join(f"{k}={metrics[k]:.4f}" for k in keys)

    # --------------------------------------------------------------------- inference

    def values(self, outputs, n_frames=None, softmax=True):
        """outputs (B, T', K) -> "values" (B, T, K) at the input's frames, in torch ops."""
        values = torch.softmax(outputs.float(), -1) if softmax else outputs.float()
        return at_input_frames(values, n_frames or outputs.shape[1])

    def predict(self, outputs, targets=None, n_frames=None, softmax=True):
        """outputs (B, T', K) -> at the input's T frames: {"pred" (B, T), "score" (B, T),
        "values" (B, T, K) probabilities (or logits)}."""
        values = self.values(outputs, n_frames, softmax)
        score, pred = values.max(-1)
        return {"pred": pred.numpy(), "score": score.numpy(), "values": values.numpy()}

    def prediction_line(self, i, p, softmax=True):
        """One window: its predicted segments, "0:0-11 2:12-40 0:41-63" (class:first-last frame)."""
        pred = p["pred"]
        edges = np.flatnonzero(np.diff(pred)) + 1
        starts, ends = np.r_[0, edges], np.r_[edges, len(pred)] - 1
        names = self.class_names
        runs = " ".join(f"{names[pred[a]] if names else pred[a]}:{a}-{b}" for a, b in zip(starts, ends))
        return f"[sample {i}] segments {runs}"

    def records(self, p, softmax=True, flat=False):
        """One row per window and frame."""
        kind = "prob" if softmax else "logit"
        names = self.class_names or range(self.n_classes)
        for i in range(len(p["pred"])):
            for t in range(p["pred"].shape[1]):
                k = int(p["pred"][i, t])
                row = {"sample": i, "frame": t, "pred": k}
                if self.class_names:
                    row["pred_name"] = self.class_names[k]
                row["score"] = float(p["score"][i, t])
                if flat:
                    row.update({f"{kind}_{c}": float(v) for c, v in zip(names, p["values"][i, t])})
                else:
                    row[kind] = p["values"][i, t].tolist()
                yield row

    def scores(self, p, y, softmax=True):
        """infer.py --y: per-frame {"n" (windows), "n_frames", "accuracy", "macro_f1", "balanced_acc",
        "class_names" (K), "per_class" {precision, recall, f1, support} (K each), "confusion" (K, K)
        in frames}, and onsets: "tolerance" (frames), "event_f1", "events" {class name: {precision,
        recall, f1, true, predicted}} for classes 1..K-1; plain numbers, {} without y."""
        if y is None:
            return {}
        rep = frame_report(y, p["pred"], self.n_classes)
        events = event_report(y, p["pred"], range(1, self.n_classes), self.tolerance)
        names = list(self.class_names or map(str, range(self.n_classes)))
        return {"n": int(len(y)), "n_frames": int(y.size), "accuracy": rep["acc"], "macro_f1": rep["f1"],
                "balanced_acc": rep["balanced_acc"], "class_names": names, "per_class": rep["per_class"],
                "confusion": rep["confusion"], "tolerance": self.tolerance, "event_f1": events["event_f1"],
                "events": {names[k]: e for k, e in events["events"].items()}}

    def report_lines(self, scores):
        """scores() as text: frames, onsets, the confusion matrix."""
        if not scores:
            return []
        s = scores
        per = " ".join(f"{name}: f1={e['f1']:.3f} ({e['true']} true, {e['predicted']} predicted)"
                       for name, e in s["events"].items())
        return [f"frame accuracy={s['accuracy']:.4f} macro_f1={s['macro_f1']:.4f} balanced_acc={s['balanced_acc']:.4f} "
                f"(n={s['n_frames']} frames in {s['n']} windows)",
                f"onsets within {s['tolerance']} frames: event_f1={s['event_f1']:.4f} | {per}",
                format_confusion(s["confusion"], s["class_names"])]
