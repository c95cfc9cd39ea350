"""Metrics computed once over a whole validation set (numpy, no extra deps): classification,
regression, per-frame labels and their events."""
import numpy as np


def confusion_matrix(y_true, y_pred, n_classes):
    """(K, K) counts; row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def auroc_binary(scores, positive):
    """Area under the ROC curve from ranks (ties get their average rank); None if undefined."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(scores):  # average rank over each run of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_report(probs, y_true, n_classes):
    """probs (N, K) class probabilities, y_true (N,) -> dict of plain Python numbers/lists.

    acc, f1 (macro), balanced_acc, auroc (macro one-vs-rest over classes present in y_true,
    None when fewer than two are), per-class precision/recall/f1/support, confusion matrix.
    """
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    aucs = [auroc_binary(probs[:, k].astype(np.float64), y_true == k) for k in range(n_classes) if present[k]]
    aucs = [a for a in aucs if a is not None]
    return {
        "acc": float(tp.sum() / max(1, len(y_true))),
        # macro over the classes that occur in y_true or in the predictions
        "f1": float(f1[present | (predicted > 0)].mean()) if (present | (predicted > 0)).any() else 0.0,
        "balanced_acc": float(recall[present].mean()) if present.any() else 0.0,
        "auroc": float(np.mean(aucs)) if len(aucs) >= 2 or (n_classes == 2 and aucs) else None,
        "per_class": {"precision": precision.tolist(), "recall": recall.tolist(),
                      "f1": f1.tolist(), "support": support.astype(int).tolist()},
        "confusion": cm.tolist(),
    }


def format_confusion(cm, names=None):
    """A confusion matrix as aligned text rows (true class down, predicted across)."""
    cm = np.asarray(cm)
    names = names or [str(k) for k in range(len(cm))]
    width = max(5, max(len(n) for n in names), len(str(cm.max())))
    lines = ["true\\pred " + " ".join(n.rjust(width) for n in names)]
    for name, row in zip(names, cm):
        lines.append(name.rjust(9) + " " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def frame_report(y_true, y_pred, n_classes):
    """Per-frame labels (N, T) true and predicted -> acc, macro-F1 (over the classes present in
    either), balanced accuracy, per-class precision/recall/f1/support, confusion (frames)."""
    t, p = np.ravel(y_true), np.ravel(y_pred)
    cm = confusion_matrix(t, p, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1).astype(np.float64), cm.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    seen = (support > 0) | (predicted > 0)
    return {"acc": float(tp.sum() / max(1, len(t))), "f1": float(f1[seen].mean()) if seen.any() else 0.0,
            "balanced_acc": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
            "per_class": {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
                          "support": support.astype(int).tolist()},
            "confusion": cm.tolist()}


def onsets(labels, k):
    """Frames (window, t) where class k begins: labels[t] == k and labels[t - 1] != k (an event
    already running at frame 0 has no onset in the window)."""
    starts = (labels[:, 1:] == k) & (labels[:, :-1] != k)
    w, t = np.nonzero(starts)
    return w, t + 1


def event_report(y_true, y_pred, classes, tolerance):
    """Onset detection for each class in `classes` (the positive ones): a predicted onset is a
    hit when it lies within `tolerance` frames of a true onset of the same class in the same
    window, each true onset matched at most once (nearest first). -> {"event_f1": mean over the
    classes, "events": {class: {"precision", "recall", "f1", "true", "predicted"}}}."""
    per_class = {}
    for k in classes:
        tw, tt = onsets(y_true, k)
        pw, pt = onsets(y_pred, k)
        hits = 0
        for w in np.unique(tw):
            truth = list(tt[tw == w])
            for frame in sorted(pt[pw == w]):
                gaps = [abs(frame - u) for u in truth]
                if gaps and min(gaps) <= tolerance:
                    truth.pop(int(np.argmin(gaps)))
                    hits += 1
        precision = hits / len(pt) if len(pt) else 0.0
        recall = hits / len(tt) if len(tt) else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[int(k)] = {"precision": precision, "recall": recall, "f1": f1, "true": int(len(tt)),
                             "predicted": int(len(pt))}
    scored = [v["f1"] for v in per_class.values() if v["true"]]
    return {"event_f1": float(np.mean(scored)) if scored else 0.0, "events": per_class}


def regression_report(pred, y):
    """pred, y (N, D) in the targets' units -> mae, rmse, r2, r (each the mean over the D
    targets) and "per_target" lists. R2 and Pearson r are None for a target (or prediction)
    without variance, and left out of the mean; a mean over none is 0.0 (no better than the
    mean), so a monitor never sees None."""
    pred, y = np.asarray(pred, np.float64), np.asarray(y, np.float64)
    err = pred - y
    mae = np.abs(err).mean(axis=0)
    rmse = np.sqrt((err ** 2).mean(axis=0))
    sst = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    r2 = [1.0 - float((err[:, d] ** 2).sum() / sst[d]) if sst[d] > 0 else None for d in range(y.shape[1])]
    r = []
    for d in range(y.shape[1]):
        a, b = pred[:, d] - pred[:, d].mean(), y[:, d] - y[:, d].mean()
        denom = np.sqrt((a ** 2).sum() * (b ** 2).sum())
        r.append(float((a * b).sum() / denom) if denom > 0 else None)

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else 0.0
    return {"mae": float(mae.mean()), "rmse": float(rmse.mean()), "r2": mean(r2), "r": mean(r),
            "per_target": {"mae": mae.tolist(), "rmse": rmse.tolist(), "r2": r2, "r": r}}
