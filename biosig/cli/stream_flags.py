"""infer.py's streaming flags (--stream, --lsl, ...) and the checks that keep them apart from the
whole-window flags; the decoding itself is biosig/deploy/decode.py.
"""
from biosig.errors import UserError, number, positive_int, positive_int_or


def add_stream_flags(p):
    """infer.py's streaming flags."""
    g = p.add_argument_group("streaming (per-frame models: eeg2arm, tcn)")
    g.add_argument("--stream", action="store_true", help="decode --x as a recording frame by frame, as it would "
                   "arrive: (C, F, T) one recording, (N, C, F, T) N recordings, or a parquet table of them; "
                   "several inputs: --x NAME=PATH each, covering the same time at their own rates")
    g.add_argument("--chunk", type=positive_int, default=1, help="input frames handed to the model per step")
    g.add_argument("--context", type=positive_int_or("all"), help="input frames an output may see: W keeps memory and time "
                   "per frame constant (outputs see the last W/2..W frames); all: everything since the start, "
                   "exactly forward_seq (default: the training window T)")
    g.add_argument("--hysteresis", type=positive_int, default=1, metavar="K",
                   help="the decision switches only after a new class wins K frames in a row")
    g.add_argument("--threshold", type=number(float, 0, 1), default=0.0, metavar="P",
                   help="... each with probability >= P")
    p.add_named(g, "--lsl", metavar="[INPUT=]NAME", help="decode a live Lab Streaming Layer stream of that name "
                "instead of --x (needs pylsl); stop with Ctrl-C, --max-frames or --lsl-timeout. A checkpoint of "
                "several inputs: --lsl INPUT=NAME for each, aligned by their LSL times")
    g.add_argument("--lsl-out", metavar="NAME", help="push each output frame's decision, class and probabilities "
                   "to an LSL outlet of that name (needs pylsl); it does not wait for listeners")
    g.add_argument("--max-frames", type=positive_int, help="--lsl: stop after this many input frames (the stream's "
                   "samples: a band-power model's raw samples; several streams: the slowest input's, and as many "
                   "seconds of the others)")
    g.add_argument("--lsl-timeout", type=number(float, 0, low_open=True), default=None, metavar="S",
                   help="--lsl: seconds to wait for the stream to appear, and for data before stopping (10)")


def check_flags(args):
    """Streaming flags without --stream/--lsl, and window flags with them: one line each."""
    streaming = args.stream or args.lsl
    for flag, used in (("--chunk", args.chunk != 1), ("--context", args.context), ("--hysteresis", args.hysteresis != 1),
                       ("--threshold", args.threshold), ("--lsl-out", args.lsl_out), ("--max-frames", args.max_frames),
                       ("--lsl-timeout", args.lsl_timeout)):
        if used and not streaming:
            raise UserError(f"{flag} is for decoding frame by frame: add --stream (or --lsl NAME)")
    if not streaming:
        return
    for flag, used in (("--y", args.y), ("--groups", args.groups), ("--group-col", args.group_col),
                       ("--onsets", args.onsets),
                       ("--report", args.report), ("--strict-groups", args.strict_groups),
                       ("--no-softmax", args.no_softmax), ("--normalize", args.normalize), ("--batch", args.batch != 256)):
        if used:
            raise UserError(f"{flag} is for scoring whole windows; it is not used with --stream/--lsl")
    if args.lsl and args.x:
        raise UserError("--lsl and --x: decode a live stream or a recording, not both")
    if not args.lsl and not args.x:
        raise UserError("--stream needs the recording: --x recording.npy (or --lsl NAME for a live stream)")
    if args.max_frames and not args.lsl:
        raise UserError("--max-frames is for --lsl (a recording ends by itself)")
    if args.lsl_timeout and not args.lsl:
        raise UserError("--lsl-timeout is for --lsl")
