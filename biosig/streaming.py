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

from . import preprocess as preprocess_module
from .errors import UserError


def stream_problem(predictor):
    """Why a checkpoint cannot be decoded frame by frame, or None."""
    from .models import MODELS
    model, task = predictor.model, predictor.task
    name = model.config["name"]
    if not hasattr(model, "stepper"):
        streamable = ", ".join(m.name for m in MODELS.values() if hasattr(m, "stepper"))
        return (f"model {name} has no per-frame output to stream (models that have: {streamable}); "
                f"score whole windows without --stream")
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
        self.model = model.cpu().eval()
        self.preprocess = preprocess_module.per_frame(preprocess or {})
        self.pool = self.model.stepper().pool
        field = getattr(self.model, "receptive_field", None)
        if context is not None and context < 2 * self.pool:
            raise UserError(f"--context {context}: needs at least {2 * self.pool} input frames "
                            f"(two output frames of {self.pool})")
        self.context = context
        self.lanes = context is not None and (field is None or context < field)
        # lanes: lane j starts at output frame j * hop, waits (its input kept) until (j + 1) * hop,
        # catches up in one pass, then gives the outputs until (j + 2) * hop, when it is dropped
        self.hop = (context // self.pool) // 2 if self.lanes else None
        self.current = self.model.stepper(2 * self.hop if self.lanes else None)
        self.waiting, self.kept = None, []
        self.frames_in = 0
        self.frames_out = 0

    def push(self, x):
        """x (C, F, n) new input frames, numpy or tensor -> {"frame": (m,) output frame index,
        "input_frame": (m,) the last input frame it covers, "context": (m,) input frames it saw,
        "logits", "probs": (m, K)} for the m output frames they complete (m may be 0)."""
        x = x.float() if torch.is_tensor(x) else torch.from_numpy(np.array(x, dtype=np.float32))   # a copy: memmaps are read-only
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
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else self._emit(x[..., :0], 0)

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


def context_frames(text):
    """--context: a number of input frames (>= 1), or all."""
    if text == "all":
        return text
    from .errors import positive_int
    return positive_int(text)


def add_stream_flags(p):
    """infer.py's streaming flags."""
    from .errors import number, positive_int
    g = p.add_argument_group("streaming (per-frame models: eeg2arm, tcn)")
    g.add_argument("--stream", action="store_true", help="decode --x as a recording frame by frame, as it would "
                   "arrive: (C, F, T) one recording, (N, C, F, T) N recordings, or a parquet table of them")
    g.add_argument("--chunk", type=positive_int, default=1, help="input frames handed to the model per step")
    g.add_argument("--context", type=context_frames, help="input frames an output may see: W keeps memory and time "
                   "per frame constant (outputs see the last W/2..W frames); all: everything since the start, "
                   "exactly forward_seq (default: the training window T)")
    g.add_argument("--hysteresis", type=positive_int, default=1, metavar="K",
                   help="the decision switches only after a new class wins K frames in a row")
    g.add_argument("--threshold", type=number(float, 0, 1), default=0.0, metavar="P",
                   help="... each with probability >= P")
    g.add_argument("--lsl", metavar="NAME", help="decode a live Lab Streaming Layer stream of that name instead of "
                   "--x (needs pylsl); stop with Ctrl-C, --max-frames or --lsl-timeout")
    g.add_argument("--lsl-out", metavar="NAME", help="push each output frame's decision, class and probabilities "
                   "to an LSL outlet of that name (needs pylsl)")
    g.add_argument("--max-frames", type=positive_int, help="--lsl: stop after this many input frames")
    g.add_argument("--lsl-timeout", type=number(float, 0, low_open=True), default=10.0, metavar="S",
                   help="--lsl: seconds to wait for the stream to appear, and for data before stopping")


def run(args):
    """infer.py --stream / --lsl: decode recordings or a live stream frame by frame, with hysteresis.
    Prints the decision switches (unless --quiet) and the latency per step at the end."""
    import os

    from . import checkpoint
    from .inference import Predictor
    for flag, value in (("--y", args.y), ("--groups", args.groups), ("--group-col", args.group_col),
                        ("--report", args.report), ("--strict-groups", args.strict_groups)):
        if value:
            raise UserError(f"{flag} scores whole windows; it is not used with --stream/--lsl")
    if args.lsl and args.x:
        raise UserError("--lsl and --x: decode a live stream or a recording, not both")
    if args.out and os.path.splitext(args.out)[1] not in (".csv", ".npy", ".jsonl"):
        raise UserError(f"{args.out}: --out must end in .csv, .npy or .jsonl")
    if args.out:
        checkpoint.check_writable(args.out, "--out", inputs=[("--x", args.x), ("--ckpt", args.ckpt)])
    if args.max_frames and not args.lsl:
        raise UserError("--max-frames is for --lsl (a recording ends by itself)")
    predictor = Predictor(checkpoint.load(args.ckpt), device="cpu", path=args.ckpt)
    problem = stream_problem(predictor)
    if problem:
        raise UserError(f"{args.ckpt}: cannot stream: {problem}")
    context = None if args.context == "all" else (args.context or predictor.train_frames)
    # one thread: a step is many small operations, and a second thread only adds waiting (with
    # another process on the other core, a step that waits for it took 300 ms instead of 2)
    torch.set_num_threads(1)
    rows = Rows(args.out, predictor.task)
    latency = []
    if args.lsl:
        from . import lsl
        c, f = predictor.model.config["n_elec"], predictor.model.config["n_bands"]
        outlet = lsl.Outlet(args.lsl_out, predictor.task) if args.lsl_out else None
        inlet = lsl.Inlet(args.lsl, c * f, args.lsl_timeout)
        sources = [((x.reshape(c, f, -1), stamps) for x, stamps in inlet.chunks(args.chunk, args.max_frames))]
    else:
        outlet = None
        sources = [((x[..., i:i + args.chunk], None) for i in range(0, x.shape[-1], args.chunk))
                   for x in read_recordings(args, predictor)]
    with rows:
        for n, source in enumerate(sources):
            decode(predictor, context, args, source, n, rows, latency, outlet, several=len(sources) > 1)
    if outlet is not None:
        outlet.close()
    summary(latency, rows, args)


def read_recordings(args, predictor):
    """--x: (C, F, T), (N, C, F, T) or a parquet table -> (N, C, F, T) float32, checked against the model."""
    from .data import read_source
    X, _, _, _ = read_source(args.x, None, x_col=args.x_col, signal_cols=args.signal_cols, label_col=None,
                             load="mmap", ndims=(3, 4), need_labels=False)
    c, f = predictor.model.config["n_elec"], predictor.model.config["n_bands"]
    if X.shape[1:3] != (c, f):
        raise UserError(f"{args.x}: recordings of C={X.shape[1]} channels and F={X.shape[2]} bands, "
                        f"the checkpoint {args.ckpt} takes C={c}, F={f}")
    return X


def decode(predictor, context, args, source, recording, rows, latency, outlet=None, several=False):
    """One stream: (chunk (C, F, n), LSL timestamps (n,) or None) pairs -> rows, one per output
    frame; the time of each step (push and hysteresis) appended to `latency`. several: the
    stream is one of several recordings (its number goes into the printed lines)."""
    import time
    streamer = Streamer(predictor.model, context, predictor.preprocess)
    smooth = Hysteresis(args.hysteresis, args.threshold)
    names = predictor.task.class_names
    try:
        for chunk, stamps in source:
            t0 = time.perf_counter()
            out = streamer.push(chunk)
            decisions = [smooth.update(p) for p in out["probs"]]
            latency.append((time.perf_counter() - t0, chunk.shape[-1]))
            for j, (decision, switched) in enumerate(decisions):
                frame = {k: v[j] for k, v in out.items()}
                if stamps is not None:
                    frame["time"] = float(stamps[frame["input_frame"] - streamer.frames_in + len(stamps)])
                rows.add(recording, frame, decision, switched)
                if outlet is not None:
                    outlet.push(decision, frame)
                if switched and not args.quiet:
                    name = f" ({names[decision]})" if names else ""
                    where = f"recording {recording}, " if several else ""
                    print(f"[{where}frame {frame['frame']}, input frame {frame['input_frame']}] decision -> {decision}{name}")
    except KeyboardInterrupt:
        if not args.lsl:
            raise
        print("stopped (Ctrl-C)")         # a live stream ends this way: what was decoded is kept


def summary(latency, rows, args):
    """The closing lines: frames decoded, switches, the latency per step and throughput."""
    if not latency:
        print("no input frames decoded")
        return
    seconds = np.array([s for s, _ in latency]) * 1e3
    frames = sum(n for _, n in latency)
    print(f"decoded {frames} input frames -> {rows.count} output frames, {rows.switches} decision switches")
    print(f"latency per step of {args.chunk} input frame{'s' if args.chunk > 1 else ''}: p50 {np.median(seconds):.3f} ms, "
          f"p99 {np.percentile(seconds, 99):.3f} ms, max {seconds.max():.3f} ms; "
          f"{frames / (seconds.sum() / 1e3):.0f} input frames/s")


class Rows:
    """--out for a stream, written atomically at the end: .csv / .jsonl one row per output frame
    (recording, frame, input_frame, [time], context, pred, score, prob_<class>..., decision,
    switch), .npy the probabilities (N, T', K) (N recordings; a live stream is one)."""

    def __init__(self, path, task):
        self.path, self.task = path, task
        self.count = self.switches = 0
        self.probs = []

    def __enter__(self):
        import contextlib
        import os

        from .atomic import atomic_path
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
        names = self.task.class_names or range(len(frame["probs"]))
        row = {"recording": recording, "frame": int(frame["frame"]), "input_frame": int(frame["input_frame"])}
        if "time" in frame:
            row["time"] = frame["time"]
        row.update({"context": int(frame["context"]), **self.task.prediction_fields(int(frame["probs"].argmax())),
                    "score": float(frame["probs"].max())})
        if self.ext == ".csv":
            import csv
            row.update({f"prob_{c}": float(p) for c, p in zip(names, frame["probs"])})
            row.update({"decision": "" if decision is None else decision, "switch": int(switched)})
            if self.writer is None:
                self.writer = csv.writer(self.file, lineterminator="\n")
                self.writer.writerow(row)
            self.writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row.values()])
        else:
            import json
            row.update({"prob": [float(p) for p in frame["probs"]], "decision": decision, "switch": bool(switched)})
            self.file.write(json.dumps(row) + "\n")

    def __exit__(self, *exc):
        if self.path and self.ext == ".npy" and exc[0] is None:
            k = self.task.n_classes
            longest = max((len(p) for p in self.probs), default=0)
            out = np.full((max(len(self.probs), 1), longest, k), np.nan, dtype=np.float32)
            for i, p in enumerate(self.probs):
                if p:
                    out[i, :len(p)] = np.stack(p)
            with open(self.tmp, "wb") as f:
                np.save(f, out)
        return self.stack.__exit__(*exc)
