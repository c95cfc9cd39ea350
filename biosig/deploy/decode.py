"""infer.py --stream / --lsl: decode recordings or a live Lab Streaming Layer stream frame by
frame (biosig.streaming), with the hysteresis, a row per output frame, and the latency.

Recordings end by themselves; a live stream ends with --max-frames, --lsl-timeout seconds
without data, Ctrl-C or SIGTERM: what was decoded is kept (--out written), then one line, and
exit status 130 (Ctrl-C) or 143 (SIGTERM) as for train.py.
"""
import os
import signal
import time

import numpy as np
import torch

from ..errors import Interrupted, UserError, warn
from .streamer import Hysteresis, Streamer, stream_problem


def run(args):
    """Decode recordings or a live stream frame by frame, with hysteresis, as infer.py's flags
    (checked: biosig/cli/stream_flags.py) say. Prints the decision switches (unless --quiet) and
    the latency per step at the end."""
    from .. import checkpoint
    from .inputs import check_out
    from .predictor import Predictor
    check_out(args.out, [("--x", p) for p in (args.x.values() if isinstance(args.x, dict) else [args.x])]
              + [("--ckpt", args.ckpt)])
    predictor = Predictor(checkpoint.load(args.ckpt), device="cpu", path=args.ckpt)
    # one thread: a step is many small operations, and a second thread only adds waiting (with
    # another process on the other core, a step that waits for it took 300 ms instead of 2)
    torch.set_num_threads(args.threads or 1)          # (--threads: the user's word wins)
    several = predictor.inputs or isinstance(args.x, dict) or isinstance(args.lsl, dict)
    if several:
        from .streamer_several import open_several
        make, sources, outlet = open_several(args, predictor)
    else:
        make, sources, outlet = open_one(args, predictor)
    rows, latency, stopped = Rows(args.out, predictor.task), [], None
    with rows, sigterm_as_interrupt(args.lsl):
        for n, source in enumerate(sources):
            stopped = decode(predictor, make, args, source, n, rows, latency, outlet, several=len(sources) > 1)
    if outlet is not None:
        outlet.close()
    summary(latency, rows, args)
    if stopped is not None:
        words, code = Interrupted.stopped_by(stopped)
        kept = f"the {rows.count} output frames decoded are in {args.out}" if args.out else "nothing to keep (no --out)"
        raise Interrupted(f"{words}: {kept}", code)


def open_one(args, predictor):
    """A checkpoint of one input: (a fresh Streamer each call, the sources, the --lsl-out outlet or None)."""
    problem = stream_problem(predictor)
    if problem:
        raise UserError(f"{args.ckpt}: cannot decode frame by frame: {problem}")
    context = None if args.context == "all" else (args.context or predictor.train_frames)
    c, f = predictor.model.config["n_elec"], predictor.model.config["n_bands"]
    outlet = None
    if args.lsl:
        from . import lsl
        outlet = lsl.Outlet(args.lsl_out, predictor.task) if args.lsl_out else None
        inlet = lsl.Inlet(args.lsl, args.lsl_timeout or 10.0)
        fs = args.fs if not isinstance(args.fs, dict) else None
        sources = [lsl.live_frames(inlet, predictor.signal, args, c, f, f"--lsl {args.lsl}", fs, args.max_frames)]
    else:
        sources = [chunks(x, args.chunk) for x in read_recordings(args, predictor)]
    return (lambda: Streamer(predictor.model, context, predictor.preprocess)), sources, outlet


def chunks(x, chunk):
    """(chunk (C, F, n), None) pieces of one recording (C, F, T); a function, so each
    recording's generator holds its own x (a generator in a comprehension binds x late)."""
    return ((x[..., i:i + chunk], None) for i in range(0, x.shape[-1], chunk))


class sigterm_as_interrupt:
    """While decoding a live stream, SIGTERM (a supervisor's stop) ends it as Ctrl-C does, so
    what was decoded is kept."""

    def __init__(self, live):
        self.live = live

    def __enter__(self):
        if self.live:
            def terminated(signum, frame):
                raise KeyboardInterrupt("SIGTERM")
            self.before = signal.signal(signal.SIGTERM, terminated)

    def __exit__(self, *exc):
        if self.live:
            signal.signal(signal.SIGTERM, self.before)


def read_recordings(args, predictor):
    """--x: (C, F, T), (N, C, F, T), a raw (C, T_total) .npy, a parquet table, or a file MNE reads
    (EDF, BDF, .fif, ...) -> (N, C, F, T) float32, conformed to the checkpoint's signal contract
    and checked against the model."""
    from ..data import parquet, read_source
    from ..signals.contract import Conformed, conform
    from .inputs import conform_input
    from ..signals.windows import mapped
    raw = mapped(args.x, "recording") if args.x.endswith(".npy") and os.path.isfile(args.x) else None
    if raw is not None and raw.ndim == 2:       # a raw recording (C, T_total), as biosig.windows takes one
        X = conform_input(raw[None, :, None], args.x, args.fs, args.channel_names, predictor, args.ckpt)
    elif args.x.endswith(".npy") or parquet.is_parquet(args.x):
        X, _, _, _ = read_source(args.x, None, x_col=args.x_col, signal_cols=args.signal_cols, label_col=None,
                                 load="mmap", ndims=(3, 4), need_labels=False)
        X = conform_input(X, args.x, args.fs, args.channel_names, predictor, args.ckpt)   # by name; raw -> frames
    else:                                   # a continuous recording file, through MNE
        from ..signals.bandpower import BandPower
        from ..signals.contract import names
        from ..signals.windows import Recording
        rec = Recording(args.x, args.fs, names(args.channel_names))
        spec = {"fs": rec.fs, "channels": rec.channels, "units": rec.units}
        made = predictor.signal.get("bandpower")
        frames = BandPower.from_config(made).stream() if made else None
        blocks = []                         # read a block at a time; a band-power model keeps only its frames
        for start in range(0, rec.n_samples, 1 << 18):
            raw = rec.read(start, min(rec.n_samples, start + (1 << 18)))             # (C, n) float32
            blocks.append(frames.push(raw) if frames else raw[:, None])
        spec["bandpower"] = made
        X = conform(np.concatenate(blocks, -1)[None], spec, predictor.signal, args.x, args.ckpt)
    X = X[:] if isinstance(X, Conformed) else X
    c, f = predictor.model.config["n_elec"], predictor.model.config["n_bands"]
    if X.shape[1:3] != (c, f):
        raise UserError(f"{args.x}: recordings of C={X.shape[1]} channels and F={X.shape[2]} bands, "
                        f"the checkpoint {args.ckpt} takes C={c}, F={f}")
    return X


def decode(predictor, make, args, source, recording, rows, latency, outlet=None, several=False):
    """One stream: (chunk (C, F, n), LSL timestamps (n,) or None) pairs (several inputs: dicts of
    them by name) -> rows, one per output frame, from make()'s streamer; the time of each step
    (push and hysteresis) appended to `latency`. several: the stream is one of several
    recordings (its number goes into the printed lines). Returns the KeyboardInterrupt that
    stopped a live stream, or None."""
    streamer = make()
    smooth = Hysteresis(args.hysteresis, args.threshold)
    names = predictor.task.class_names
    where = f"recording {recording}, " if several else ""
    try:
        for chunk, stamps in source:
            t0 = time.perf_counter()
            named = isinstance(chunk, dict)        # several inputs: the clock input's frames count
            out = streamer.push(chunk, stamps) if named else streamer.push(chunk)
            decisions = [smooth.update(p) for p in out["probs"]]
            n = (chunk[streamer.clock].shape[-1] if streamer.clock in chunk else 0) if named else chunk.shape[-1]
            latency.append((time.perf_counter() - t0, n))
            for j, (decision, switched) in enumerate(decisions):
                frame = {k: v[j] for k, v in out.items()}
                if stamps is not None and not named:
                    frame["time"] = float(stamps[frame["input_frame"] - streamer.frames_in + len(stamps)])
                rows.add(recording, frame, decision, switched)
                if outlet is not None:
                    outlet.push(decision, frame)
                if switched and not args.quiet:
                    name = f" ({names[decision]})" if names else ""
                    print(f"[{where}frame {frame['frame']}, input frame {frame['input_frame']}] decision -> {decision}{name}")
    except KeyboardInterrupt as stop:
        if not args.lsl:
            raise
        return stop                       # a live stream ends this way: what was decoded is kept
    if streamer.frames_out == 0 and streamer.frames_in > 0:
        given = args.x or args.lsl
        given = ", ".join(f"{k}={v}" for k, v in given.items()) if isinstance(given, dict) else given
        warn(f"{given}: {where}{streamer.frames_in} input frames, fewer than the {streamer.pool} "
             f"one output frame takes: nothing decoded")
    return None


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(latency, rows, args):
    """The closing lines: frames decoded, switches, the latency per step and throughput."""
    if not latency:
        print("no input frames decoded")
        return
    ms = np.array([s for s, _ in latency]) * 1e3
    frames = sum(n for _, n in latency)
    print(f"decoded {plural(frames, 'input frame')} -> {plural(rows.count, 'output frame')}, "
          f"{rows.switches} decision switch{'' if rows.switches == 1 else 'es'}")
    print(f"latency per step of {plural(args.chunk, 'input frame')}: p50 {np.median(ms):.3f} ms, "
          f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms; {frames / (ms.sum() / 1e3):.0f} input frames/s")


class Rows:
    """--out for a stream, written atomically at the end: .csv / .jsonl one row per output frame
    (recording, frame, input_frame, [time], context, pred, [pred_name], score, prob_<class>...
    (.jsonl: prob, a list), decision, switch), .npy the probabilities (N, T', K) (N recordings;
    a live stream is one). The header is written even when no frame is."""

    def __init__(self, path, task):
        self.path, self.task = path, task
        self.count = self.switches = 0
        self.probs = []

    def __enter__(self):
        import contextlib

        from ..atomic import atomic_path
        self.stack = contextlib.ExitStack()
        if self.path:
            self.tmp = self.stack.enter_context(atomic_path(self.path))
            self.ext = os.path.splitext(self.path)[1]
            if self.ext != ".npy":
                self.file = self.stack.enter_context(open(self.tmp, "w", newline=""))
                self.writer = None
        return self

    def add(self, recording, frame, decision, switched):
        self.count += 1
        self.switches += bool(switched)
        if not self.path:
            return
        if self.ext == ".npy":
            while len(self.probs) <= recording:
                self.probs.append([])
            self.probs[recording].append(frame["probs"])
            return
        self._write(self._row(recording, frame, decision, switched))

    def _row(self, recording, frame, decision, switched):
        names = self.task.class_names
        pred = int(frame["probs"].argmax())
        row = {"recording": recording, "frame": int(frame["frame"]), "input_frame": int(frame["input_frame"])}
        if "time" in frame:
            row["time"] = frame["time"]
        row.update({"context": int(frame["context"]), "pred": pred})
        if names:
            row["pred_name"] = names[pred]
        row["score"] = float(frame["probs"].max())
        if self.ext == ".csv":
            row.update({f"prob_{c}": float(p) for c, p in zip(names or range(len(frame["probs"])), frame["probs"])})
            row.update({"decision": "" if decision is None else decision, "switch": int(switched)})
        else:
            row.update({"prob": [float(p) for p in frame["probs"]], "decision": decision, "switch": bool(switched)})
        return row

    def _write(self, row):
        if self.ext == ".jsonl":
            import json
            self.file.write(json.dumps(row) + "\n")
            return
        import csv
        if self.writer is None:
            self.writer = csv.writer(self.file, lineterminator="\n")
            self.writer.writerow(row)
        # 6 significant digits, but LSL timestamps (seconds since boot) in full: 1e-6 s
        self.writer.writerow([f"{v:.6f}" if k == "time" else f"{v:.6g}" if isinstance(v, float) else v
                              for k, v in row.items()])

    def __exit__(self, *exc):
        if self.path and exc[0] is None:
            if self.ext == ".npy":
                k = self.task.n_classes
                longest = max((len(p) for p in self.probs), default=0)
                out = np.full((max(len(self.probs), 1), longest, k), np.nan, dtype=np.float32)
                for i, p in enumerate(self.probs):
                    if p:
                        out[i, :len(p)] = np.stack(p)
                with open(self.tmp, "wb") as f:
                    np.save(f, out)
            elif self.ext == ".csv" and self.writer is None:
                names = self.task.class_names or range(self.task.n_classes)
                self.file.write(",".join(["recording", "frame", "input_frame", "context", "pred", "score",
                                          *[f"prob_{c}" for c in names], "decision", "switch"]) + "\n")
        return self.stack.__exit__(*exc)
