"""Load a checkpoint into a ready model and predict, with the preprocessing it was trained with.

    from biosig.inference import load_model_from_checkpoint
    predictor = load_model_from_checkpoint("ckpt.pt", device="cpu")
    out = predictor.predict(X)            # X: (B, C, F, T) or (C, F, T), numpy or tensor
    out["pred"], out["score"], out["values"]
    frames = predictor.predict_frames(X)  # one prediction per frame: (B, T') / (B, T', K)
"""
import numpy as np
import torch

from . import checkpoint, preprocess
from .errors import UserError
from .models import build_model
from .tasks import build_task


class Predictor:
    """A checkpoint's model (eval mode), task and preprocessing, on one device.

    predict() and predict_frames() apply the checkpoint's preprocessing; `model` is the bare
    nn.Module and does not (call it only on windows already preprocessed)."""

    def __init__(self, ckpt, device="cpu", path="checkpoint"):
        self.path = path
        self.device = torch.device(device)
        self.task = build_task(ckpt["task"])
        self.preprocess = ckpt["preprocess"]
        self.channels = ckpt.get("channels")                   # names, when training knew them
        shape = ckpt.get("example_input_shape")
        self.train_frames = int(shape[-1]) if shape else None  # T seen in training
        try:
            self.model = build_model(ckpt["config"])
            self.model.load_state_dict(ckpt["model_state"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise UserError(f"{path}: checkpoint does not match its model config ({str(e).splitlines()[0][:160]})") from None
        self.model.to(self.device).eval()

    def input_problem(self, shape):
        """None if windows of `shape` (B, C, F, T) fit the model, else the reason."""
        return self.model.input_problem(*shape[1:])

    def _windows(self, x):
        """numpy or tensor (B, C, F, T) -> float tensor on the device, preprocessing applied."""
        x = x.float() if torch.is_tensor(x) else torch.from_numpy(np.array(x, dtype=np.float32))  # copy: memmaps are read-only
        return preprocess.apply(x.to(self.device), self.preprocess)

    @torch.no_grad()
    def outputs(self, x):
        """x (B, C, F, T) -> raw model outputs (B, K) on CPU, preprocessing applied."""
        return self.model(self._windows(x)).float().cpu()

    @torch.no_grad()
    def frame_outputs(self, x):
        """x (B, C, F, T) -> raw per-frame outputs (B, T', K) on CPU, preprocessing applied.
        Frame t depends on input up to t only (forward_seq is causal)."""
        if not getattr(self.model, "per_frame", False):
            raise UserError(f"{self.path}: model {self.model.config['name']} has no per-frame output (forward_seq)")
        return self.model.forward_seq(self._windows(x)).float().cpu()

    def _batched(self, x, batch, softmax, outputs):
        if x.ndim == 3:
            x = x[None]
        problem = self.input_problem(x.shape)
        if problem:
            raise UserError(f"input: {problem}")
        preds, scores, values = [], [], []
        for start in range(0, len(x), batch):
            out = outputs(x[start:start + batch])
            lead = out.shape[:-1]            # (B,) or (B, T')
            p, s, v = self.task.predict(out.reshape(-1, out.shape[-1]), softmax=softmax)
            preds.append(p.reshape(lead).numpy()), scores.append(s.reshape(lead).numpy())
            values.append(v.reshape(out.shape).numpy())
        return {"pred": np.concatenate(preds), "score": np.concatenate(scores), "values": np.concatenate(values)}

    def predict(self, x, batch=256, softmax=True):
        """x (B, C, F, T) or (C, F, T) -> {"pred": (B,), "score": (B,), "values": (B, K)} numpy."""
        return self._batched(x, batch, softmax, self.outputs)

    def predict_frames(self, x, batch=256, softmax=True):
        """x (B, C, F, T) or (C, F, T) -> one prediction per frame, for streaming:
        {"pred": (B, T'), "score": (B, T'), "values": (B, T', K)} numpy. Preprocessing applied
        (the per-window z-score, if the checkpoint has it, uses the whole window)."""
        return self._batched(x, batch, softmax, self.frame_outputs)


def load_model_from_checkpoint(path, device="cpu"):
    """Path to a biosig .pt -> Predictor (loads with weights_only=True: no code runs)."""
    return Predictor(checkpoint.load(path), device=device, path=path)
