"""What the random-kernel models beside MiniRocket share (Hydra, MultiRocket, their union): a fixed
transform drawn in fit_data(), and the head MiniRocket's paper fits on it, through the Model
contract's hooks (biosig/models/__init__.py).

The head: a ridge classifier in closed form on the scaled features of every training window,
the penalty chosen by exact leave-one-out (models/ridge.py), solved before the first epoch
(head_windows / head_features / fit_head) and then left as it is (fixed_parameters); the
`penalty` buffer records the solve (0: trained by gradient steps), and a checkpoint without it
still loads. Option `head`: auto solves up to RIDGE_WINDOWS training windows and trains the head
with AdamW beyond them; ridge / adamw force one. As in MiniRocket, the features of each training
window are kept on CPU (keyed by a hash of its bytes, up to CACHE_BYTES), so the first epoch
does not recompute what fit_data() and the head's solve computed already.

A model here defines  _features(x (B, rows, T) float32) -> (B, D)  and  scale(features) -> what
the head takes, and fills `fitted` (and its scaling buffers) in fit_data().
"""
import hashlib

import torch
from torch import nn

from ..errors import one_of
from ..declare import Option
from .base import Model
from .ridge import solve_into

RIDGE_WINDOWS = 20_000          # head=auto solves in closed form up to this many training windows
CACHE_BYTES = 512 << 20         # training-mode feature cache, at most
CHUNK = 64                      # windows transformed at once (the outputs of every kernel are held)
HEAD_OPTION = Option("head", one_of("auto", "ridge", "adamw"), "auto", "auto: ridge up to 20,000 training windows, "
                     "adamw beyond; ridge: closed form, penalty by leave-one-out (the paper); adamw: gradient steps")


class RocketHead(Model):
    """A fixed transform (the subclass's _features) and a linear head (B, D) -> (B, K)."""
    per_frame = False
    recipe = ("--epochs", "1")       # the head is solved before epoch 1, which only scores it
    fixed_frames = True              # the dilations are chosen for the training T

    def __init__(self, n_features, n_outputs, drop):
        super().__init__()
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        # the ridge penalty the head was solved with; 0: not solved (trained by gradient steps)
        self.register_buffer("penalty", torch.zeros((), dtype=torch.float64))
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(n_features, n_outputs))
        self.register_load_state_dict_pre_hook(self._before_ridge)
        self._clear_cache()             # window hash -> features; emptied whenever the buffers change
        self.register_load_state_dict_post_hook(self._clear_cache)

    def head_windows(self, n):
        """Whether the head is solved in closed form from n training windows (option head)."""
        head = self.config["head"]
        return head == "ridge" or (head == "auto" and n <= RIDGE_WINDOWS)

    def head_features(self, x):
        """(B, C, F, T) -> the scaled features the head takes (B, n_features)."""
        return self.scale(self.transform(x))

    @torch.no_grad()
    def fit_head(self, features, targets, weights=None):
        """The ridge head from every training window's scaled features (N, D), the task's
        least-squares targets (N, K) and window weights (N,) or None (models/ridge.py)."""
        return solve_into(self.head[-1], self.penalty, features, targets, weights)

    def fixed_parameters(self):
        """The head once solved in closed form: gradient steps leave it as it is."""
        return list(self.head.parameters()) if float(self.penalty) > 0 else []

    def _fitted(self, x, feats, mean, std):
        """fit_data's last step, once the transform is drawn: the scaler's statistics mean and std
        (D,) set, and the training windows x's features (N, D) kept for the first epoch on CPU."""
        if x.device.type == "cpu":       # the first epoch's features, computed already
            self._remember([self._key(window) for window in x], feats)
        self.mean.copy_(mean)
        self.std.copy_(std)
        self.fitted.fill_(True)

    @staticmethod
    def _before_ridge(module, state, prefix, *_):
        """A checkpoint written before the ridge head (a head trained by AdamW) has no penalty."""
        state.setdefault(prefix + "penalty", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def transform(self, x):
        """(B, C, F, T) -> features (B, D), float32. Training on CPU: from the feature cache where
        the window was seen before."""
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            if not self.training or x.device.type != "cpu":
                return self._chunked(x.flatten(1, 2))
            keys = [self._key(w) for w in x]
            new = [i for i, k in enumerate(keys) if k not in self._cache]
            fresh = dict(zip(new, self._chunked(x[new].flatten(1, 2)))) if new else {}
            self._remember([keys[i] for i in new], list(fresh.values()))
            return torch.stack([fresh[i] if i in fresh else self._cache[k] for i, k in enumerate(keys)])

    def _chunked(self, x):
        """(B, rows, T) -> (B, D): _features CHUNK windows at a time (the same numbers)."""
        return torch.cat([self._features(x[s: s + CHUNK]) for s in range(0, len(x), CHUNK)])

    @staticmethod
    def _key(window):
        """A window's cache key: a 128-bit hash of its float32 bytes."""
        return hashlib.blake2b(window.contiguous().numpy().tobytes(), digest_size=16).digest()

    def _remember(self, keys, feats):
        for key, row in zip(keys, feats):
            if self._cache_bytes + row.numel() * 4 > CACHE_BYTES:
                return
            self._cache[key] = row.clone()
            self._cache_bytes += row.numel() * 4

    def _clear_cache(self, *_):
        self._cache, self._cache_bytes = {}, 0

    @property
    def n_features(self):
        """D, the width of the features the head takes."""
        return self.head[-1].in_features

    def features(self, x):
        """(B, C, F, T) -> the scaled features the head takes (B, n_features), once fit_data() drew the transform."""
        if not bool(self.fitted):
            raise RuntimeError(f"{type(self).__name__}.fit_data() was not called: its transform is not fitted")
        return self.head_features(x)

    def forward(self, x):
        """(B, C, F, T) -> logits (B, K): the head (dropout, linear) on features(x)."""
        return self.head(self.features(x))

    def export_module(self):
        """An eval forward that torch.export and ONNX can trace, with the same numbers (biosig.export)."""
        return ExportForward(self)


class ExportForward(nn.Module):
    """The eval forward x (B, C, F, T) -> logits (B, K) without the `fitted` check (a buffer read as
    a bool) and without chunking the batch (a loop over its size)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        m = self.model
        return m.head(m.scale(m._features(x.float().flatten(1, 2))))
