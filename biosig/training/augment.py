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

AUGMENTS = ("shift", "scale", "noise", "chandrop", "mixup")
SHIFT, SCALE, NOISE, CHANDROP, MIXUP_ALPHA = 0.1, 0.2, 0.1, 0.1, 0.2


class Mix:
    """A mixup of one batch: the loss is lam * loss(y) + (1 - lam) * loss(y[perm])."""

    def __init__(self, perm, lam):
        self.perm, self.lam = perm, lam

    def loss_sum(self, task, outputs, targets):
        return self.lam * task.loss_sum(outputs, targets) + (1 - self.lam) * task.loss_sum(outputs, targets[self.perm])


def augment(x, names, gen):
    """x (B, C, F, T) training batch, names from AUGMENTS, gen a CPU torch.Generator ->
    (x' (B, C, F, T), Mix or None). x itself is not modified."""
    b, c, _, t = x.shape

    def draw(*shape):
        return torch.rand(*shape, generator=gen).to(x.device)

    if "shift" in names:
        most = max(1, int(t * SHIFT))
        shift = torch.randint(-most, most + 1, (b,), generator=gen).to(x.device)
        source = torch.arange(t, device=x.device)[None] - shift[:, None]          # (B, T): frame read from
        inside = ((source >= 0) & (source < t)).to(x.dtype)
        index = source.clamp(0, t - 1)[:, None, None, :].expand_as(x)
        x = x.gather(3, index) * inside[:, None, None, :]
    if "scale" in names:
        x = x * torch.exp((draw(b) * 2 - 1) * SCALE).to(x.dtype)[:, None, None, None]
    if "noise" in names:
        sd = x.std(dim=3, keepdim=True)
        x = x + torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * sd * NOISE
    if "chandrop" in names:
        x = x * (draw(b, c) >= CHANDROP).to(x.dtype)[:, :, None, None]
    mix = None
    if "mixup" in names:
        perm = torch.randperm(b, generator=gen).to(x.device)
        lam = float(np.random.default_rng(int(torch.randint(2 ** 62, (1,), generator=gen))).beta(MIXUP_ALPHA,
                                                                                                  MIXUP_ALPHA))
        lam = max(lam, 1 - lam)
        x = lam * x + (1 - lam) * x[perm]
        mix = Mix(perm, lam)
    return x, mix
