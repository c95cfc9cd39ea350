"""Input preprocessing that travels inside the checkpoint, so inference repeats training's.

A spec is a plain dict (it must load with weights_only=True):
  {"normalize": "none" | "sample_zscore", "mean": list | None, "std": list | None}
  (+ "from": the --init checkpoint whose statistics a fine-tuning run kept)
sample_zscore is the EEG2Arm guide's per-window z-score over (F, T) for each electrode.
mean/std, when present, are per-(channel, band) statistics of shape (C, F) from the
training split, applied before the per-window z-score.
"""
import numpy as np
import torch

EPS = 1e-6


def make_spec(normalize=False, mean=None, std=None):
    return {"normalize": "sample_zscore" if normalize else "none",
            "mean": None if mean is None else [list(map(float, r)) for r in mean],
            "std": None if std is None else [list(map(float, r)) for r in std]}


def apply(x, spec):
    """x: (B, C, F, T) float tensor -> preprocessed (B, C, F, T). Several inputs: x {name: (B, C, F,
    T)} and spec {"inputs": {name: spec}}, each input by its own."""
    if "inputs" in spec:
        return {k: apply(v, spec["inputs"][k]) for k, v in x.items()}
    if spec.get("mean") is not None:
        mean = torch.tensor(spec["mean"], dtype=x.dtype, device=x.device)[None, :, :, None]
        std = torch.tensor(spec["std"], dtype=x.dtype, device=x.device)[None, :, :, None]
        x = (x - mean) / (std + EPS)
    if spec.get("normalize") == "sample_zscore":
        mu = x.mean(dim=(2, 3), keepdim=True)
        sd = x.std(dim=(2, 3), keepdim=True, unbiased=False)
        x = (x - mu) / (sd + EPS)
    return x


def per_frame(spec):
    """A spec without the per-window z-score -> a function x (B, C, F, n) -> preprocessed, its
    statistics made tensors once (streaming calls it for every new frame)."""
    assert spec.get("normalize") != "sample_zscore", "the per-window z-score needs whole windows"
    if spec.get("mean") is None:
        return lambda x: x
    mean = torch.tensor(spec["mean"], dtype=torch.float32)[None, :, :, None]
    scale = torch.tensor(spec["std"], dtype=torch.float32)[None, :, :, None] + EPS
    return lambda x: (x - mean) / scale


def fitted_spec(X, train_idx, normalize=False, standardize=False):
    """The spec of a run (or of one cross-validation fold) whose training windows are X[train_idx]:
    --standardize statistics from those windows only, so nothing of validation leaks in. Several
    inputs (X a dict): {"inputs": {name: its spec}}."""
    if isinstance(X, dict):
        return {"inputs": {k: fitted_spec(v, train_idx, normalize, standardize) for k, v in X.items()}}
    mean, std = channel_stats(X, train_idx) if standardize else (None, None)
    return make_spec(normalize=normalize, mean=mean, std=std)


def describe(spec):
    if "inputs" in spec:
        return describe(next(iter(spec["inputs"].values()))) + " (each input by its own)"
    parts = []
    if spec.get("mean") is not None:
        parts.append(f"the standardization of --init {spec['from']}" if spec.get("from") else
                     "train-split standardization")
    if spec.get("normalize") == "sample_zscore":
        parts.append("per-window z-score")
    return " + ".join(parts) or "none"


def channel_stats(X, indices, chunk_bytes=64 << 20):
    """Mean and std (C, F) of X's windows `indices` over windows and frames, in float64,
    reading in chunks (a memmap is never read whole). For --standardize: training split only."""
    indices = np.sort(np.asarray(indices))
    c, f = X.shape[1], X.shape[2]
    total, total_sq, count = np.zeros((c, f)), np.zeros((c, f)), 0
    rows = max(1, chunk_bytes // max(1, X[0].nbytes))
    for start in range(0, len(indices), rows):
        block = np.asarray(X[indices[start:start + rows]], dtype=np.float64)
        total += block.sum(axis=(0, 3))
        total_sq += (block * block).sum(axis=(0, 3))
        count += block.shape[0] * block.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean, std
