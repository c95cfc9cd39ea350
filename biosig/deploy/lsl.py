"""Lab Streaming Layer, the field's transport for live EEG: infer.py --lsl reads a stream,
--lsl-out publishes the decisions. Needs pylsl (`pip install pylsl`), imported only here.

Input: a stream of C * F channels, sample by sample (channel c, band f at c * F + f; F = 1
for raw signals), e.g. an amplifier's. Output: an irregular-rate float32 stream of 2 + K
channels per output frame: the decision (-1 before the first), the frame's class, and its
K probabilities, stamped with the LSL time of the input sample that completed the frame.
"""
import os
import time

import numpy as np

from ..errors import UserError, needs, warn


def _pylsl(flag):
    own = [os.environ.get("LSLAPICFG"), "lsl_api.cfg", os.path.expanduser("~/lsl_api/lsl_api.cfg"),
           "/etc/lsl_api/lsl_api.cfg"]
    if not any(path and os.path.exists(path) for path in own):      # liblsl reads it when first loaded
        os.environ["LSLAPICFG"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsl_api.cfg")
    try:
        import pylsl
    except ImportError:
        raise needs(flag, "pylsl") from None
    return pylsl


class Inlet:
    """The first stream named `name` on the network; count, fs (its nominal rate, None if
    irregular) and labels (its channel labels, None unless every channel has one) describe it."""

    def __init__(self, name, timeout):
        pylsl = _pylsl("--lsl")
        found, deadline = [], time.monotonic() + timeout
        while not found and time.monotonic() < deadline:     # short calls: Ctrl-C is handled between them
            found = pylsl.resolve_byprop("name", name, timeout=min(0.5, max(0.01, deadline - time.monotonic())))
        if not found:
            raise UserError(f"--lsl {name}: no LSL stream of that name found within {timeout:g} s (--lsl-timeout)")
        info = found[0]
        self.count, self.fs = info.channel_count(), info.nominal_srate() or None
        try:
            from pylsl.util import LostError          # pylsl >= 1.16; older ones export it at the top
        except ImportError:
            LostError = pylsl.LostError
        self.name, self.timeout, self.lost = name, timeout, LostError
        self.inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
        self.inlet.open_stream(timeout=timeout)
        labels, channel = [], self.inlet.info(timeout).desc().child("channels").child("channel")   # the full info
        while not channel.empty():
            labels.append(channel.child_value("label"))
            channel = channel.next_sibling()
        self.labels = labels if len(labels) == self.count and all(labels) else None

    def chunks(self, chunk, max_frames=None):
        """Yield (x (C*F, n) float32, LSL timestamps (n,)) as samples arrive, `chunk` at a time
        (fewer when that is all there is), until `max_frames` samples, or none came for the timeout."""
        total, quiet_since = 0, time.monotonic()
        while max_frames is None or total < max_frames:
            want = chunk if max_frames is None else min(chunk, max_frames - total)
            try:
                samples, stamps = self.inlet.pull_chunk(timeout=0.05, max_samples=want)
            except self.lost:
                warn(f"--lsl {self.name}: the stream was lost (its outlet closed); stopping")
                return
            if not samples:
                if time.monotonic() - quiet_since > self.timeout:
                    warn(f"--lsl {self.name}: no data for {self.timeout:g} s (--lsl-timeout); stopping")
                    return
                continue
            quiet_since = time.monotonic()
            total += len(samples)
            yield np.asarray(samples, dtype=np.float32).T, np.asarray(stamps)


class Outlet:
    """An LSL outlet named `name` for a classification task's per-frame decisions."""

    def __init__(self, name, task):
        pylsl = _pylsl("--lsl-out")
        names = [str(c) for c in (task.class_names or range(task.n_classes))]
        info = pylsl.StreamInfo(name, "Decisions", 2 + len(names), pylsl.IRREGULAR_RATE, "float32", f"biosig-{name}")
        channels = info.desc().append_child("channels")
        for label in ["decision", "class"] + [f"prob_{c}" for c in names]:
            channels.append_child("channel").append_child_value("label", label)
        self.outlet = pylsl.StreamOutlet(info)

    def close(self):
        """Give queued samples half a second to reach the consumers (pylsl has no flush), then close."""
        if self.outlet.have_consumers():
            time.sleep(0.5)
        del self.outlet

    def push(self, decision, frame):
        """One output frame (a Streamer.push row with its LSL "time", if any)."""
        sample = [-1.0 if decision is None else float(decision), float(frame["probs"].argmax()),
                  *map(float, frame["probs"])]
        if "time" in frame:
            self.outlet.push_sample(sample, frame["time"])
        else:
            self.outlet.push_sample(sample)
