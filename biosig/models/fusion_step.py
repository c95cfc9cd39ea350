"""Late fusion stepped through time (fusion-late with per-frame encoders, LateFusion.stepper()):
each input's encoder is stepped at its own rate, and a fused output frame comes out once every
input has reached it.

The clock is forward_seq's: the input with the fewest encoder frames per training window (T'_o)
gives the output frames, and at output frame j input m gives its frame ((j + 1) T'_m) // T'_o - 1,
with T'_m = its n_times // its encoder's time pool. So on recordings whose lengths keep the
training window's proportions (the same seconds of every input) the outputs equal forward_seq on
everything pushed, for any chunking of any input; a faster input's frames wait until the slower
ones catch up, and only those still to be read are kept.
"""
import torch
from torch import nn


def identity_head(encoder, width):
    """The head whose outputs are its inputs, in the form the encoder's stepper reads (tcn: its
    1x1 Conv1d; eeg2arm: a Linear): fusion's encoders have none (nn.Identity), and a stepper
    built with this one steps their features, exactly (x @ I adds only zeros)."""
    layer = nn.Conv1d(width, width, 1) if encoder.config["name"] == "tcn" else nn.Linear(width, width)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width).reshape(layer.weight.shape))
        layer.bias.zero_()
    return layer


def feature_stepper(encoder, width, frames=None):
    """An encoder's stepper whose per-frame outputs are its features (B, n', D). The steppers copy
    the weights they read, so the encoder gets its nn.Identity head back at once."""
    head = encoder.head
    encoder.head = identity_head(encoder, width)
    try:
        return encoder.stepper(frames)
    finally:
        encoder.head = head


class FusionStepper:
    """LateFusion's forward_seq (eval mode), one chunk of each input at a time.

    step(x): x {name: (B, C_m, F_m, n_m)} new input frames of any of the inputs (n_m >= 0; an
    input may be left out of a call) -> (B, m, K) logits of the m output frames every input has
    now reached. inputs: the names streamed (default: all); the others are absent (their learned
    stand-in), as forward_seq leaves them out."""

    def __init__(self, model, frames=None, inputs=None):
        model = model.eval()
        self.order = list(model.encoders)
        self.names = list(inputs or self.order)
        self.steppers = {n: feature_stepper(model.encoders[n], model.widths[n], frames) for n in self.names}
        self.pools = {n: self.steppers[n].pool for n in self.names}
        mods = model.config["modalities"]
        counts = {n: mods[n]["n_times"] // self.pools[n] for n in self.names}       # T'_m of a training window
        self.clock = min(self.names, key=counts.get)
        self.ratio = {n: (counts[n], counts[self.clock]) for n in self.names}      # (T'_m, T'_o)
        self.absent = {n: model.absent[n].detach() for n in self.order if n not in self.names}
        self.head = model.head
        self.held = {n: [] for n in self.names}        # encoder frames (B, k, D) not yet read by an output
        self.first = dict.fromkeys(self.names, 0)      # the index of the first one held
        self.reached = dict.fromkeys(self.names, 0)    # encoder frames made so far
        self.frames_out = 0
        self.batch = None

    def source(self, name, j):
        """Input `name`'s encoder frame that output frame(s) j (tensor) read."""
        a, b = self.ratio[name]
        return (j + 1) * a // b - 1

    def ready(self):
        """Output frames every input has reached: frame j needs source(m, j) < reached[m]."""
        return min(((self.reached[n] + 1) * b - 1) // a for n, (a, b) in self.ratio.items())

    @torch.inference_mode()
    def step(self, x):
        for name, chunk in x.items():
            if name not in self.steppers:
                raise KeyError(f"{name} is not an input this stepper streams ({', '.join(self.names)})")
            self.batch = chunk.shape[0]
            if chunk.shape[-1] == 0:            # (a causal convolution's stepper wants frames)
                continue
            feats = self.steppers[name].step(chunk).float()                   # (B, k, D)
            if feats.shape[1]:
                self.held[name].append(feats)
                self.reached[name] += feats.shape[1]
        end, batch = self.ready(), self.batch or 1
        if end <= self.frames_out:
            return torch.zeros(batch, 0, self.head[-1].out_features)
        j = torch.arange(self.frames_out, end)
        parts = []
        for name in self.order:
            if name in self.absent:
                parts.append(self.absent[name].expand(batch, len(j), -1))
                continue
            held = torch.cat(self.held[name], 1)
            parts.append(held[:, self.source(name, j) - self.first[name]])
            keep = min(self.source(name, end) - self.first[name], held.shape[1])   # from what the next one reads
            self.held[name], self.first[name] = [held[:, keep:]], self.first[name] + keep
        self.frames_out = end
        return self.head(torch.cat(parts, -1))
