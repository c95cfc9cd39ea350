"""Real-time decoding: a checkpoint's class at every output frame, as the input arrives.

    from biosig.streaming import Hysteresis, Streamer
    predictor = load_model_from_checkpoint("ckpt.pt")       # biosig.inference
    streamer = Streamer(predictor.model, context=64, preprocess=predictor.preprocess)
    smooth = Hysteresis(consecutive=3, threshold=0.6)
    for chunk in source:                      # (C, F, n) new input frames, any n >= 1
        out = streamer.push(chunk)            # the m output frames they complete
        for probs in out["probs"]:            # (K,) each
            decision, switched = smooth.update(probs)

The streamer steps the model (its `stepper()`, biosig/models/incremental.py) instead of
re-running a window for every new frame: the past is kept as state, not recomputed.

Context. With context=None every output frame sees the whole recording so far, and the
outputs equal forward_seq on everything pushed (for any chunking). That state grows with the
recording for a Transformer (its keys and values). With context=W input frames the state is
bounded: the stream runs in two lanes, each a fresh start of the model, restarted in turn every
W/2 frames, and each output frame comes from the older lane. So output frame q equals
forward_seq on the input from its lane's start to q: the last W/2..W frames (out["context"] says
how many), never more than the model saw in training when W is the training window (the
default of infer.py --stream). A model with a finite receptive field (tcn) needs no lanes once
W covers it: its state is bounded anyway and its outputs equal the full-history ones.
"""
import numpy as np
import torch

from .. import normalize as preprocess_module
from ..errors import UserError


def stream_problem(predictor):
    """Why a checkpoint cannot be decoded frame by frame, or None."""
    from ..models import MODELS
    model, task = predictor.model, predictor.task
    name = model.config["name"]
    if not hasattr(model, "stepper"):
        streamable = ", ".join(m.name for m in MODELS.values() if hasattr(m, "stepper") and not getattr(m, "multi_input", False))
        return f"model {name} has no per-frame output (models that have: {streamable}); use whole windows"
    if getattr(task, "n_classes", None) is None:
        return f"streaming decodes classes, and the checkpoint's task is {task.name}"
    if predictor.preprocess.get("normalize") == "sample_zscore":
        return ("it was trained with --normalize, a z-score over each whole window, which a stream does not "
                "have; retrain with --standardize (fixed per-channel statistics, applied frame by frame)")
    return None


class Streamer:
    """A per-frame model's classes, one chunk of new input frames at a time (one stream).
    preprocess: the checkpoint's spec (biosig.preprocess), applied frame by frame (check a
    checkpoint with stream_problem() first: a per-window z-score cannot be)."""

    def __init__(self, model, context=None, preprocess=None):
        """context: input frames an output may see (None: everything since the start; infer.py's
        default is the training window)."""
        self.model = model.cpu().eval()
        self.preprocess = preprocess_module.per_frame(preprocess or {})
        self.current = self.model.stepper()          # lane 0 (its cache grows as needed)
        self.pool = self.current.pool
        field = getattr(self.model, "receptive_field", None)
        if context is not None and context < 2 * self.pool:
            raise UserError(f"--context {context}: needs at least {2 * self.pool} input frames "
                            f"(two output frames of {self.pool})")
        self.context = context
        self.lanes = context is not None and (field is None or context < field)
        # lanes: lane j starts at output frame j * hop, waits (its input kept) until (j + 1) * hop,
        # catches up in one pass, then gives the outputs until (j + 2) * hop, when it is dropped
        self.hop = (context // self.pool) // 2 if self.lanes else None
        self.waiting, self.kept = None, []
        self.frames_in = 0
        self.frames_out = 0

    def push(self, x):
        """x (C, F, n) new input frames, numpy or tensor -> {"frame": (m,) output frame index,
        "input_frame": (m,) the last input frame it covers, "context": (m,) input frames it saw,
        "logits", "probs": (m, K)} for the m output frames they complete (m may be 0)."""
        x = x.float() if torch.is_tensor(x) else torch.from_numpy(np.array(x, dtype=np.float32))   # a copy: memmaps are read-only
        if x.shape[-1] == 0:
            return self._emit(torch.zeros(1, 0, self.model.config["n_outputs"]), 0)
        x = self.preprocess(x[None])
        if not self.lanes:
            self.frames_in += x.shape[-1]
            return self._emit(self.current.step(x), 0)
        parts, at, block = [], 0, self.hop * self.pool
        while at < x.shape[-1]:
            piece = x[..., at:at + block - self.frames_in % block]          # up to the next lane boundary
            parts.append(self._emit(self.current.step(piece), self.start))
            if self.waiting is not None:
                self.kept.append(piece)
            at += piece.shape[-1]
            self.frames_in += piece.shape[-1]
            if self.frames_in % block == 0:
                self._next_lane()
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    @property
    def start(self):
        """The output frame the current lane started at."""
        j = self.frames_in // (self.hop * self.pool)
        return max(0, j - 1) * self.hop

    def _next_lane(self):
        """At a lane boundary: the waiting lane catches up and gives the outputs from now on; a new one waits."""
        if self.waiting is not None:
            self.waiting.step(torch.cat(self.kept, -1))
            self.current = self.waiting
        self.waiting, self.kept = self.model.stepper(2 * self.hop), []

    def _emit(self, logits, start):
        """logits (1, m, K) of the next m output frames, from a lane started at output frame `start`."""
        logits = logits[0]
        frames = np.arange(self.frames_out, self.frames_out + len(logits))
        self.frames_out += len(logits)
        return {"frame": frames, "input_frame": (frames + 1) * self.pool - 1, "context": (frames + 1 - start) * self.pool,
                "logits": logits.numpy(), "probs": torch.softmax(logits, -1).numpy()}


class Hysteresis:
    """Smoothing of per-frame classes: the emitted class (the decision) changes only after one
    new class has won `consecutive` frames in a row, each with probability >= `threshold`.

    A frame's winner is its most probable class; a tie that includes the current decision goes
    to the decision, any other tie to the lowest class. A frame whose winner is below the
    threshold, or is the decision itself, ends a challenger's run; frames that agree with the
    challenger add to its count, never reset it. Before the first switch the decision is None
    (the first class to win `consecutive` frames becomes it)."""

    def __init__(self, consecutive=1, threshold=0.0):
        if consecutive < 1:
            raise ValueError("consecutive must be >= 1")
        self.consecutive, self.threshold = consecutive, threshold
        self.decision, self.candidate, self.count = None, None, 0

    def winner(self, probs):
        """probs (K,) -> the frame's winning class, or None when below the threshold."""
        probs = np.asarray(probs)
        top = probs.max()
        if top < self.threshold:
            return None
        tied = np.flatnonzero(probs == top)
        return self.decision if self.decision in tied else int(tied[0])

    def update(self, probs):
        """probs (K,) of the next frame -> (decision, switched): switched is True on the frame
        the decision changes (including the first decision)."""
        won = self.winner(probs)
        if won is None or won == self.decision:
            self.candidate, self.count = None, 0
        elif won == self.candidate:
            self.count += 1
        else:
            self.candidate, self.count = won, 1
        if self.candidate is not None and self.count >= self.consecutive:
            self.decision, self.candidate, self.count = self.candidate, None, 0
            return self.decision, True
        return self.decision, False

