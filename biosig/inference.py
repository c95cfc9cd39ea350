"""Load a checkpoint into a ready model and predict, with the preprocessing it was trained with.

    from biosig.inference import load_model_from_checkpoint
    predictor = load_model_from_checkpoint("ckpt.pt", device="cpu")
    out = predictor.predict(X)            # X: (B, C, F, T) or (C, F, T), numpy or tensor
    out["pred"], out["score"], out["values"]
"""
import numpy as np
import torch

from . import checkpoint, preprocess
from .errors import UserError
from .models import build_model
from .tasks import build_task


class Predictor:
    """A checkpoint's model (eval mode), task and preprocessing, on one device."""

    def __init__(self, ckpt, device="cpu", path="checkpoint"):
        self.path = path
        self.meta = {k: v for k, v in ckpt.items() if k != "model_state"}
        self.device = torch.device(device)
        self.task = build_task(ckpt["task"])
        self.preprocess = ckpt["preprocess"]
        self.class_names = ckpt.get("class_names")
        try:
            self.model = build_model(ckpt["config"])
            self.model.load_state_dict(ckpt["model_state"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise UserError(f"{path}: checkpoint does not match its model config ({str(e).splitlines()[0][:160]})") from None
        self.model.to(self.device).eval()

    def input_problem(self, shape):
        """None if windows of `shape` (B, C, F, T) fit the model, else the reason."""
        return self.model.input_problem(*shape[1:])

    @torch.no_grad()
    def outputs(self, x):
        """x (B, C, F, T) -> raw model outputs (B, K) on CPU, preprocessing applied."""
        x = x.float() if torch.is_tensor(x) else torch.from_numpy(np.array(x, dtype=np.float32))  # copy: memmaps are read-only
        x = preprocess.apply(x.to(self.device), self.preprocess)
        return self.model(x).float().cpu()

    def predict(self, x, batch=256, softmax=True):
        """x (B, C, F, T) or (C, F, T) -> {"pred": (B,), "score": (B,), "values": (B, K)} numpy."""
        if x.ndim == 3:
            x = x[None]
        problem = self.input_problem(x.shape)
        if problem:
            raise UserError(f"input: {problem}")
        preds, scores, values = [], [], []
        for start in range(0, len(x), batch):
            p, s, v = self.task.predict(self.outputs(x[start:start + batch]), softmax=softmax)
            preds.append(p.numpy()), scores.append(s.numpy()), values.append(v.numpy())
        return {"pred": np.concatenate(preds), "score": np.concatenate(scores), "values": np.concatenate(values)}


def load_model_from_checkpoint(path, device="cpu"):
    """Path to a biosig .pt -> Predictor (loads with weights_only=True: no code runs)."""
    return Predictor(checkpoint.load(path), device=device, path=path)
