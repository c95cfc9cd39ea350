"""Lab Streaming Layer, the field's transport for live EEG: infer.py --lsl reads a stream,
--lsl-out publishes the decisions. Needs pylsl (`pip install pylsl`), imported only here.

Input: a stream of C * F channels, sample by sample (channel c, band f at c * F + f; F = 1
for raw signals), e.g. an amplifier's. Output: an irregular-rate float32 stream of 2 + K
channels per output frame: the decision (-1 before the first), the frame's class, and its
K probabilities, stamped with the LSL time of the input sample that completed the frame.
"""
import os
import queue
import threading
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


class Aligner:
    """Several live streams put on one clock by their LSL times: each starts at the sample nearest
    the latest first sample of them all (the earlier ones dropped, also those that arrive after
    the start is known), so that sample i of every stream is i of its own periods after one
    common start. periods come from `rates` {name: Hz or None (irregular: no tolerance)}.

    push(name, x (C, ..., n), stamps (n,)) -> {name: (x, stamps)} the chunks to decode now:
    nothing until every stream has given samples, then each one's held chunks trimmed to the
    start, and from then on each chunk as it comes (trimmed too)."""

    def __init__(self, rates):
        self.half = {n: 0.5 / fs if fs else 0.0 for n, fs in rates.items()}
        self.held = {n: [] for n in rates}
        self.start = None

    def push(self, name, x, stamps):
        stamps = np.asarray(stamps, dtype=np.float64)
        if self.start is not None:
            return {name: self._trimmed(name, x, stamps)}
        if len(stamps):
            self.held[name].append((x, stamps))
        if any(not parts for parts in self.held.values()):
            return {}
        self.start = max(parts[0][1][0] for parts in self.held.values())
        ready = {n: self._trimmed(n, np.concatenate([p[0] for p in parts], -1), np.concatenate([p[1] for p in parts]))
                 for n, parts in self.held.items()}
        self.held = None
        return ready

    def _trimmed(self, name, x, stamps):
        keep = stamps > self.start - self.half[name] - 1e-9
        return (x, stamps) if keep.all() else (x[..., keep], stamps[keep])


def merged(sources):
    """{name: iterator of (x, stamps)}, each read in its own thread -> (name, x, stamps) in the
    order they arrive, until every one has ended; an error in a reader is raised here. The main
    thread waits in short steps, so Ctrl-C reaches it; once it stops reading, the readers stop at
    their next chunk (or their stream's timeout)."""
    arrived, done, stop = queue.Queue(), object(), threading.Event()

    def read(name, source):
        try:
            for x, stamps in source:
                if stop.is_set():           # the caller has what it wanted
                    return
                arrived.put((name, x, stamps))
        except BaseException as e:          # (a UserError about the stream: the caller says it)
            arrived.put((name, e, None))
            return
        arrived.put((name, done, None))
    for name, source in sources.items():
        threading.Thread(target=read, args=(name, source), daemon=True).start()
    running = len(sources)
    try:
        while running:
            try:
                name, x, stamps = arrived.get(timeout=0.1)
            except queue.Empty:
                continue
            if x is done:
                running -= 1
            elif isinstance(x, BaseException):
                raise x
            else:
                yield name, x, stamps
    finally:
        stop.set()


def live_frames(inlet, trained, args, c, f, where, fs=None, max_frames=None, per_input=False):
    """(chunk (C, F, n), LSL timestamps (n,)) from a live stream, as the signal contract `trained`
    (the checkpoint's, or one input's) says: channels reordered by their labels, raw samples made
    into its band-power frames (each frame stamped with its last sample's time). The stream
    carries C x F channels (channel c, band f at c * F + f), or C raw ones for a band-power
    model. per_input: one of several inputs (--channel-names is not for it)."""
    from ..signals.bandpower import BandPower
    from ..signals.contract import channel_order, names
    bp = BandPower.from_config(trained["bandpower"]) if trained.get("bandpower") else None
    raw = bp is not None and inlet.count == c
    if inlet.count != (c if raw else c * f):
        raise UserError(f"{where}: the stream has {inlet.count} channels, the checkpoint {args.ckpt} takes C x F = "
                        f"{c * f}" + (f" (or C = {c} raw channels, made into its band-power frames)" if bp else ""))
    rate = trained.get("fs") if bp is None or raw else trained["fs"] / bp.hop
    fs = fs or inlet.fs
    if rate and fs and abs(rate - fs) > 1e-6:
        raise UserError(f"{where}: the stream runs at {fs:g} Hz, the checkpoint {args.ckpt} takes {rate:g} Hz")
    given = None if per_input else args.channel_names
    labels = names(given) if given else inlet.labels
    if given and inlet.labels and labels != inlet.labels:
        raise UserError(f"{where}: the stream labels its channels {','.join(inlet.labels)}; --channel-names "
                        f"contradicts them")
    if labels and len(labels) != inlet.count:
        raise UserError(f"{where}: {len(labels)} channel names for the stream's {inlet.count} channels")
    order = None
    if trained.get("channels") and labels and (raw or f == 1):
        order = channel_order(labels, trained["channels"], where, args.ckpt, those=True)
    frames, held = (bp.stream(), np.zeros(0)) if raw else (None, None)
    for x, stamps in inlet.chunks(args.chunk, max_frames):
        x = x[order] if order is not None else x
        if not raw:
            yield x.reshape(c, f, -1), stamps
            continue
        held = np.concatenate([held, stamps])
        out = frames.push(x)                                   # (C, F, k)
        k = out.shape[-1]
        ends = np.arange(k) * bp.hop + bp.frame - 1            # each frame's last sample, in `held`
        yield out, held[ends]
        held = held[k * bp.hop:]
