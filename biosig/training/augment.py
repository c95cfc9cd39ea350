"""Data augmentation of training batches (--augment NAME ...), for small, noisy data sets.

Applied by the training loop to each training batch after preprocessing and before the model;
never to validation, test or inference windows. Every random number comes from the epoch's own
generator (loop.fit seeds it from --seed, the epoch and the rank), so a resumed run draws
exactly what the uninterrupted one drew, and turning augmentation on leaves dropout's draws alone.

  shift     each window moved in time by up to a tenth of T either way (frames shifted out are
            lost, the ones shifted in are zero: the mean, after standardization)
  scale     each window's amplitude times a factor from exp(U(-0.2, 0.2)), about 0.82..1.22
  noise     Gaussian noise of 0.1 x each channel row's own standard deviation
  chandrop  each channel (all its F rows) zeroed with probability 0.1 (a bad electrode)
  mixup     the batch mixed with a shuffled copy of itself, x = l x + (1 - l) x[perm], and the loss
            mixed the same way (Zhang et al., 2018); l ~ Beta(0.2, 0.2), kept >= 0.5
"""
import numpy as np
import torch

from .. import named

AUGMENTS = ("shift", "scale", "noise", "chandrop", "mixup")
SHIFT, SCALE, NOISE, CHANDROP, MIXUP_ALPHA = 0.1, 0.2, 0.1, 0.1, 0.2


class Mix:
    """A mixup of one batch: the loss is lam * loss(y) + (1 - lam) * loss(y[perm])."""

    def __init__(self, perm, lam):
        self.perm, self.lam = perm, lam

    def loss_sum(self, task, outputs, targets):
        return self.lam * task.loss_sum(outputs, targets) + (1 - self.lam) * task.loss_sum(outputs,
                                                                                           named.take(targets, self.perm))


def augment(x, names, gen):
    """x (B, C, F, T) training batch (several inputs: {name: (B, C_m, F_m, T_m)}), names from
    AUGMENTS, gen a CPU torch.Generator -> (x', Mix or None). x itself is not modified. Several
    inputs move together: one shift (as a share of the window), one scale factor, one mixup per
    window; noise and dropped channels are each input's own."""
    inputs = x if isinstance(x, dict) else {"": x}
    b = named.rows(x)
    t0 = named.first(x).shape[-1]
    most = max(1, int(t0 * SHIFT))
    # frames of the first input; the others move by as many seconds
    shift = torch.randint(-most, most + 1, (b,), generator=gen) if "shift" in names else None
    scale = torch.exp((torch.rand(b, generator=gen) * 2 - 1) * SCALE) if "scale" in names else None
    out = {}
    for key, v in inputs.items():
        if shift is not None:
            v = _shift(v, shift if v.shape[-1] == t0 else torch.round(shift * v.shape[-1] / t0).long())
        if scale is not None:
            v = v * scale.to(v.device, v.dtype)[:, None, None, None]
        if "noise" in names:
            sd = v.std(dim=3, keepdim=True)
            v = v + torch.randn(v.shape, generator=gen).to(v.device, v.dtype) * sd * NOISE
        if "chandrop" in names:
            v = v * (torch.rand(b, v.shape[1], generator=gen).to(v.device) >= CHANDROP).to(v.dtype)[:, :, None, None]
        out[key] = v
    mix = None
    if "mixup" in names:
        perm = torch.randperm(b, generator=gen)
        lam = float(np.random.default_rng(int(torch.randint(2 ** 62, (1,), generator=gen))).beta(MIXUP_ALPHA,
                                                                                                  MIXUP_ALPHA))
        lam = max(lam, 1 - lam)
        out = {k: lam * v + (1 - lam) * v[perm.to(v.device)] for k, v in out.items()}
        mix = Mix(perm.to(named.first(x).device), lam)
    return (out if isinstance(x, dict) else out[""]), mix


def _shift(x, shift):
    """x (B, C, F, T) moved in time by shift (B,) frames."""
    t = x.shape[-1]
    shift = shift.to(x.device)
    source = torch.arange(t, device=x.device)[None] - shift[:, None]          # (B, T): frame read from
    inside = ((source >= 0) & (source < t)).to(x.dtype)
    index = source.clamp(0, t - 1)[:, None, None, :].expand_as(x)
    return x.gather(3, index) * inside[:, None, None, :]
