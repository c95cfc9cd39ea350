"""The learning-rate schedule (--schedule), stepped once per epoch by loop.fit with the monitored
value, whether it uses it or not; its state_dict travels in last.pt, so resume is exact.

  plateau  ReduceLROnPlateau on --monitor: the rate times --lr-factor after --lr-patience epochs
           without improvement
  cosine   --warmup epochs rising linearly to --lr, then half a cosine down towards 0 at the last
           of --epochs (a resumed run given more --epochs stretches the rest of the curve)
"""
import math

import torch


class Cosine(torch.optim.lr_scheduler.LambdaLR):
    """Linear warm-up over `warmup` epochs, then cosine annealing over the rest of `epochs`."""

    def __init__(self, optimizer, warmup, epochs):
        self.warmup, self.epochs = warmup, epochs
        super().__init__(optimizer, self.factor)

    def factor(self, done):
        """The rate of the epoch after `done` finished ones, as a fraction of --lr."""
        if done < self.warmup:
            return (done + 1) / (self.warmup + 1)
        span = max(1, self.epochs - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * (done - self.warmup) / span))

    def step(self, metric=None):      # the monitored value plays no part
        super().step()

    def state_dict(self):             # the epochs done; the rest comes from --lr, --warmup, --epochs
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = state["last_epoch"]
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def make_scheduler(optimizer, args, mode):
    if args.schedule == "cosine":
        return Cosine(optimizer, args.warmup, args.epochs)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=args.lr_factor,
                                                      patience=args.lr_patience)
