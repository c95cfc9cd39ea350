"""Load a checkpoint into a ready model and predict, with the preprocessing it was trained with.

    from biosig.inference import load_model_from_checkpoint
    predictor = load_model_from_checkpoint("ckpt.pt", device="cpu")
    out = predictor.predict(X)            # X: (B, C, F, T) or (C, F, T), numpy or tensor (or a memmap)
    out["pred"], out["values"]            # the task's own (classification: also "score"); see task.predict
    frames = predictor.predict_frames(X)  # a per-frame model's prediction at each output frame: (B, T') / (B, T', K)
"""
import numpy as np
import torch

from .. import checkpoint, named, normalize as preprocess
from ..errors import UserError
from ..models import build_model, input_problem
from ..tasks import build_task, load_network_state


class Predictor:
    """A checkpoint's model (eval mode), task and preprocessing, on one device.

    predict() and predict_frames() apply the checkpoint's preprocessing; `model` is the bare
    nn.Module and `net` the task's network around it (the model itself for classification),
    and neither does (call them only on windows already preprocessed)."""

    def __init__(self, ckpt, device="cpu", path="checkpoint"):
        self.path = path
        self.device = torch.device(device)
        self.task = build_task(ckpt["task"])
        self.preprocess = ckpt["preprocess"]
        self.channels = ckpt.get("channels")                   # names, when training knew them
        self.signal = ckpt.get("signal") or {}                 # biosig.signalspec: fs, channels, units, bandpower
        shape = ckpt.get("example_input_shape")
        # several inputs: their names, in order, each with its own signal and T ({name: ...}); else None
        self.inputs = list(shape) if isinstance(shape, dict) else None
        if self.inputs:
            self.signal = self.signal.get("inputs", {})
        self.train_frames = named.each(lambda s: int(s[-1]), shape) if shape else None  # T seen in training
        try:
            self.model = build_model(ckpt["config"])
            self.net = self.task.network(self.model, shape or [1, ckpt["config"]["n_elec"], ckpt["config"]["n_bands"], 1])
            load_network_state(self.net, self.model, ckpt["model_state"], ckpt.get("task_state"))
        except (KeyError, TypeError, RuntimeError) as e:
            raise UserError(f"{path}: checkpoint does not match its model config ({str(e).splitlines()[0][:160]})") from None
        self.net.to(self.device).eval()

    def input_problem(self, shape):
        """None if windows of `shape` (B, C, F, T) (several inputs: {name: (B, C, F, T)}) fit the
        model, else the reason."""
        return input_problem(self.model, shape)

    def _windows(self, x):
        """numpy or tensor (B, C, F, T) (or {name: ...}) -> float tensor(s) on the device,
        preprocessing applied."""
        def tensor(a):      # copy: memmaps are read-only
            return (a.float() if torch.is_tensor(a) else torch.from_numpy(np.array(a, dtype=np.float32))).to(self.device)
        return preprocess.apply(named.each(tensor, x), self.preprocess)

    @torch.no_grad()
    def outputs(self, x, start=0):
        """x (B, C, F, T) (or {name: ...}), windows start..start+B-1 of the input -> (the task
        network's raw outputs, the task's targets for them (pretraining's masks)) on CPU,
        preprocessing applied."""
        ids = torch.arange(start, start + named.rows(x), device=self.device)
        inputs, targets = self.task.batch(self._windows(x), ids)
        return named.each(lambda a: a.float().cpu(), self.net(inputs)), targets.cpu()

    @torch.no_grad()
    def frame_outputs(self, x):
        """x (B, C, F, T) -> (raw per-frame outputs (B, T', K) on CPU, None), preprocessing
        applied. Frame t depends on input up to t only (forward_seq is causal)."""
        if not getattr(self.model, "per_frame", False):
            raise UserError(f"{self.path}: model {self.model.config['name']} has no per-frame output (forward_seq)")
        return self.model.forward_seq(self._windows(x)).float().cpu(), None

    def _batched(self, x, batch, softmax, outputs):
        x = named.each(lambda a: a[None] if a.ndim == 3 else a, x)
        problem = self.input_problem(named.each(lambda a: tuple(a.shape), x))
        if problem:
            raise UserError(f"input: {problem}")
        parts = []
        frames = named.first(x).shape[-1]
        for start in range(0, named.rows(x), batch):
            out, targets = outputs(named.take(x, slice(start, start + batch)), start)
            parts.append(self.task.predict(out, targets, n_frames=frames, softmax=softmax))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def predict(self, x, batch=256, softmax=True):
        """x (B, C, F, T) or (C, F, T) (several inputs: {name: (B, C_m, F_m, T_m)}, an input left
        out absent) -> the task's predictions, {name: (B, ...)} numpy (task.predict; several targets:
        {"NAME:pred": ...}, split by task.member_predictions):
        classification {"pred": (B,), "score": (B,), "values": (B, K)}, regression {"pred",
        "values": (B, D)}, segmentation (B, T, K) values at the input's frames, pretrain
        {"mse": (B,) masked reconstruction error, ...}."""
        return self._batched(x, batch, softmax, self.outputs)

    def predict_frames(self, x, batch=256, softmax=True):
        """A per-frame model's classification at each of its output frames, for streaming:
        x (B, C, F, T) -> {"pred": (B, T'), "score": (B, T'), "values": (B, T', K)} numpy.
        Preprocessing applied (the per-window z-score, if the checkpoint has it, uses the whole
        window)."""
        return self._batched(x, batch, softmax, lambda x, start: self.frame_outputs(x))


def load_model_from_checkpoint(path, device="cpu"):
    """Path to a biosig .pt -> Predictor (loads with weights_only=True: no code runs)."""
    return Predictor(checkpoint.load(path), device=device, path=path)
