"""Classification metrics computed once over a whole validation set (numpy, no extra deps)."""
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
