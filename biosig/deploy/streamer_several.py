"""Streaming several inputs (fusion-late with per-frame encoders): each input's frames at its own
rate, a fused output frame once every input has reached it.

    python infer.py --ckpt fused.pt --stream --x ppg=rec_ppg.npy --x acc=rec_acc.npy --out frames.csv
    python infer.py --ckpt fused.pt --lsl ppg=PPGStream --lsl acc=ACCStream       # live, by LSL time

The model steps each encoder (LateFusion.stepper, biosig/models/fusion_step.py) on the clock of
the input with the fewest encoder frames, as forward_seq does, so the outputs equal forward_seq
on everything pushed. No lanes: an output sees everything since the start, which for encoders
of a finite receptive field (tcn) is the same as any context covering it, in bounded memory;
encoders without one (eeg2arm) stream only with --context all (their state grows).
"""
import os

import numpy as np
import torch

from .. import normalize as preprocess_module
from ..errors import UserError


class SeveralStreamer:
    """A fusion model's classes, one chunk of each input at a time. preprocess: the checkpoint's
    spec ({"inputs": {name: spec}}), each input's applied frame by frame. inputs: the names
    streamed (default all; the others absent, allowed when the model trained with
    --modality-drop). Like Streamer: frames_in and pool are the clock input's (the input whose
    frames the output frames follow), frames_out the output frames so far."""

    def __init__(self, model, preprocess=None, inputs=None):
        self.model = model.cpu().eval()
        specs = (preprocess or {}).get("inputs", {})
        self.stepper = self.model.stepper(inputs=inputs)
        self.names, self.clock = self.stepper.names, self.stepper.clock
        self.preprocess = {n: preprocess_module.per_frame(specs.get(n, {})) for n in self.names}
        self.pool = self.stepper.pools[self.clock]
        self.frames_in = self.frames_out = 0
        self.times, self.times_from = np.zeros(0), 0      # the clock input's LSL times not yet reported

    def push(self, chunks, stamps=None):
        """chunks {name: (C_m, F_m, n_m)} new input frames of any of the inputs, numpy or tensor;
        stamps {name: (n_m,)} their LSL times, or None -> as Streamer.push: {"frame", "input_frame"
        (the clock input's last frame it covers), "context", "logits", "probs"} for the m output
        frames now complete (m may be 0), and "time" (m,) when the clock input's times are given."""
        x = {}
        for name, chunk in chunks.items():
            if name not in self.preprocess:
                raise UserError(f"input {name}: not one this stream decodes ({', '.join(self.names)})")
            t = chunk.float() if torch.is_tensor(chunk) else torch.from_numpy(np.array(chunk, dtype=np.float32))
            x[name] = self.preprocess[name](t[None])
        if self.clock in x:
            self.frames_in += x[self.clock].shape[-1]
        if stamps is not None and stamps.get(self.clock) is not None:
            self.times = np.concatenate([self.times, np.asarray(stamps[self.clock], dtype=np.float64)])
        logits = self.stepper.step(x)[0]
        frames = np.arange(self.frames_out, self.frames_out + len(logits))
        self.frames_out += len(logits)
        last = (frames + 1) * self.pool - 1
        out = {"frame": frames, "input_frame": last, "context": last + 1, "logits": logits.numpy(),
               "probs": torch.softmax(logits, -1).numpy()}
        if len(self.times):
            out["time"] = self.times[last - self.times_from]
            if len(frames):                     # keep the times from the next output frame's on
                drop = min(last[-1] + 1 - self.times_from, len(self.times))
                self.times, self.times_from = self.times[drop:], self.times_from + drop
        return out


def stream_problem(predictor, context):
    """Why a checkpoint of several inputs cannot be streamed at this --context, or None."""
    model = predictor.model
    if not hasattr(model, "stepper") or not getattr(model, "per_frame", False):
        return (f"model {model.config['name']} of several inputs has no per-frame output; streaming several "
                f"inputs takes fusion-late with per-frame encoders (train.py --model fusion-late --encoder tcn)")
    if getattr(predictor.task, "n_classes", None) is None:
        return f"streaming decodes classes, and the checkpoint's task is {predictor.task.name}"
    specs = predictor.preprocess.get("inputs", {})
    if any(s.get("normalize") == "sample_zscore" for s in specs.values()):
        return ("it was trained with --normalize, a z-score over each whole window, which a stream does not "
                "have; retrain with --standardize (fixed per-channel statistics, applied frame by frame)")
    if context not in (None, "all"):
        return (f"--context {context}: several inputs stream without lanes, each output seeing everything since "
                f"the start; leave --context out (tcn encoders see their receptive field at any length) or "
                f"give --context all")
    unbounded = [n for n, e in model.encoders.items() if getattr(e, "receptive_field", None) is None]
    if unbounded and context is None:
        return (f"input {unbounded[0]}'s encoder ({model.config['encoders'][unbounded[0]]['name']}) has no finite "
                f"receptive field, and several inputs stream without lanes: --context all (its state grows "
                f"with the stream), or train with --encoder tcn")
    return None


def rates(predictor, names):
    """{name: frames per second} of the inputs (their signal contracts' fs), or, when one is not
    known, frames per training window (the windows of every input cover the same seconds)."""
    fs = {n: (predictor.signal.get(n) or {}).get("fs") for n in names}
    if all(fs.values()):
        return fs, "Hz"
    return {n: predictor.model.config["modalities"][n]["n_times"] for n in names}, "frames per training window"


def check_durations(X, paths, predictor):
    """X {name: (N, C, F, T_m)}: the same number of recordings, each the same time in every input
    (within a sample at the slowest rate), else one line."""
    counts = {paths[n]: len(v) for n, v in X.items()}
    if len(set(counts.values())) > 1:
        raise UserError("the inputs must hold the same recordings: " + ", ".join(f"{p} has {k}" for p, k in counts.items()))
    rate, unit = rates(predictor, list(X))
    seconds = {n: v.shape[-1] / rate[n] for n, v in X.items()}
    if max(seconds.values()) - min(seconds.values()) > 1 / min(rate.values()) + 1e-9:
        span = "s" if unit == "Hz" else "windows"
        said = ", ".join(f"{n}={paths[n]} {X[n].shape[-1]} frames at {rate[n]:g} {unit} ({seconds[n]:.4g} {span})"
                         for n in X)
        raise UserError(f"recordings of different durations: {said}; the inputs must cover the same time "
                        f"(within a sample)")


def read_several(args, predictor):
    """--x NAME=PATH each: (C, F, T_m) or (N, C, F, T_m) .npy, or a raw (C, T_m) one -> {name: (N, C, F, T_m)}
    float32, each conformed to its own signal contract and checked against the model."""
    from types import SimpleNamespace

    from ..data import read_source
    from ..signals.windows import mapped
    from .inputs import conform_input
    if not isinstance(args.x, dict):
        raise UserError(f"{args.ckpt}: takes the inputs {', '.join(predictor.inputs)}: give --x NAME=PATH for each")
    if args.channel_names:
        raise UserError("--channel-names is for one input; several take their channels from their sidecars")
    mods = predictor.model.config["modalities"]
    X = {}
    for name, path in args.x.items():
        if name not in mods:
            raise UserError(f"--x {name}=...: not an input of {args.ckpt} (its inputs are {', '.join(mods)})")
        fs = args.fs.get(name) if isinstance(args.fs, dict) else args.fs
        signal = predictor.signal.get(name, {})
        contract = SimpleNamespace(signal=signal, channels=signal.get("channels"))
        raw = mapped(path, "recording") if path.endswith(".npy") and os.path.isfile(path) else None
        if raw is not None and raw.ndim == 2:
            Xm = raw[None, :, None]
        else:
            Xm, _, _, _ = read_source(path, None, load="mmap", ndims=(3, 4), need_labels=False)
        Xm = np.asarray(conform_input(Xm, path, fs, None, contract, args.ckpt)[:], dtype=np.float32)
        want = (mods[name]["n_elec"], mods[name]["n_bands"])
        if Xm.shape[1:3] != want:
            raise UserError(f"{path}: recordings of C={Xm.shape[1]} channels and F={Xm.shape[2]} bands, the "
                            f"checkpoint {args.ckpt} takes C={want[0]}, F={want[1]} for input {name}")
        X[name] = Xm
    check_durations(X, args.x, predictor)
    return X


def chunks(X, i, chunk, clock, model):
    """Recording i of every input in steps of `chunk` frames of the clock input and the same time
    of the others: ({name: (C_m, F_m, n_m)}, None) pairs."""
    mods = model.config["modalities"]
    length = X[clock].shape[-1]

    def bound(name, at):       # the clock's frame `at` in input `name`'s frames
        return X[name].shape[-1] if at >= length else at * mods[name]["n_times"] // mods[clock]["n_times"]
    for at in range(0, length, chunk):
        yield {n: x[i][..., bound(n, at):bound(n, at + chunk)] for n, x in X.items()}, None


def open_several(args, predictor):
    """infer.py --stream/--lsl for a checkpoint of several inputs: (a fresh SeveralStreamer each
    call, the sources (one per recording, or the live streams'), the --lsl-out outlet or None)."""
    if not predictor.inputs:
        raise UserError(f"{args.ckpt}: takes one input; give --{'lsl' if args.lsl else 'x'} without a name")
    problem = stream_problem(predictor, args.context)
    if problem:
        raise UserError(f"{args.ckpt}: cannot decode frame by frame: {problem}")
    given = args.lsl or args.x
    names = list(given) if isinstance(given, dict) else None
    if names is None:
        raise UserError(f"{args.ckpt}: takes the inputs {', '.join(predictor.inputs)}: give "
                        f"--{'lsl' if args.lsl else 'x'} NAME=... for each")
    unknown = [n for n in names if n not in predictor.inputs]
    if unknown:
        raise UserError(f"{args.ckpt}: {unknown[0]} is not one of its inputs ({', '.join(predictor.inputs)})")
    missing = [n for n in predictor.inputs if n not in names]
    if missing and not predictor.model.config.get("modality_drop"):
        raise UserError(f"{args.ckpt}: input {missing[0]} is missing, and the model was trained without "
                        f"--modality-drop: give every input ({', '.join(predictor.inputs)})")

    def make():
        return SeveralStreamer(predictor.model, predictor.preprocess, names)
    clock = make().clock
    if not args.lsl:
        X = read_several(args, predictor)
        return make, [chunks(X, i, args.chunk, clock, predictor.model) for i in range(len(X[clock]))], None
    from . import lsl
    outlet = lsl.Outlet(args.lsl_out, predictor.task) if args.lsl_out else None
    return make, [live_several(args, predictor, names, clock)], outlet


def live_several(args, predictor, names, clock):
    """({name: chunk (C_m, F_m, n_m)}, {name: LSL times (n_m,)}) from several live streams, read each
    in its own thread and aligned by their LSL times (lsl.Aligner). --max-frames counts the clock
    input's frames from the common start; the others stop at as many seconds."""
    from . import lsl
    mods = predictor.model.config["modalities"]
    inlets = {n: lsl.Inlet(args.lsl[n], args.lsl_timeout or 10.0) for n in names}
    sources = {}
    for n, inlet in inlets.items():
        fs = args.fs.get(n) if isinstance(args.fs, dict) else None
        sources[n] = lsl.live_frames(inlet, predictor.signal.get(n, {}), args, mods[n]["n_elec"], mods[n]["n_bands"],
                                     f"--lsl {n}={args.lsl[n]}", fs, None, per_input=True)
    most = None if args.max_frames is None else \
        {n: -(-args.max_frames * mods[n]["n_times"] // mods[clock]["n_times"]) for n in names}
    taken = dict.fromkeys(names, 0)
    aligner = lsl.Aligner({n: inlet.fs for n, inlet in inlets.items()})
    for name, x, stamps in lsl.merged(sources):
        ready = aligner.push(name, x, stamps)
        if most is not None:
            ready = {n: (x[..., :most[n] - taken[n]], t[:most[n] - taken[n]]) for n, (x, t) in ready.items()}
        for n, (x, _) in ready.items():
            taken[n] += x.shape[-1]
        if ready:
            yield {n: v[0] for n, v in ready.items()}, {n: v[1] for n, v in ready.items()}
        if most is not None and all(taken[n] >= most[n] for n in names):
            return
