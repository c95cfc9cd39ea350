"""Predict with a biosig checkpoint; nothing else needed (preprocessing comes from the checkpoint).

    python infer.py --ckpt ckpt.pt --x X_infer.npy            # (B, C, F, T) or one (C, F, T)
    python infer.py --ckpt ckpt.pt --x X.npy --y y.npy --out preds.csv
    python infer.py --ckpt ckpt.pt --stream --x recording.npy --hysteresis 3 --out frames.csv   # (C, F, T_long)
    python infer.py --ckpt ckpt.pt --lsl EEG --lsl-out decisions                                  # live (pylsl)
"""
import os
import sys

from biosig.errors import ArgumentParser, HelpFormatter, positive_float, positive_int


def get_args_parser():
    from biosig.cli.stream_flags import add_stream_flags
    from biosig.data.flags import add_source_flags
    from biosig.threads import add_threads_flag
    p = ArgumentParser(description="Run a biosig checkpoint on windows.", formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py --save")
    p.add_named(p, "--x", is_path=True, metavar="[NAME=]X.npy", help="X.npy (B, C, F, T) or a single window "
                "(C, F, T); or windows.parquet (with --stream: recordings). A checkpoint of several inputs: "
                "--x NAME=PATH for each (see biosig/cli/infer_several.py)")
    p.add_named(p, "--y", is_path=True, metavar="[NAME=]y.npy", help="targets .npy, or with parquet the label "
                "column: also print the task's report (accuracy, macro-F1, confusion matrix; regression MAE, RMSE, "
                "R2; segmentation per-frame and onset scores...; parquet: used by itself when --label-col is "
                "present). Several targets: --y NAME=PATH for those to score")
    add_source_flags(p, group_col=False)
    p.add_argument("--groups", help="groups.npy (B,): the subject/recording id of each window, checked against the "
                   "groups the checkpoint trained and validated on (windows of those score optimistically)")
    p.add_argument("--group-col", help="parquet: the group column, as --groups")
    p.add_argument("--onsets", help="onsets.npy (B,): each window's start in seconds in its recording, written as "
                   "an onset_s column of a .csv/.jsonl --out (default: the onsets.npy biosig.windows wrote beside "
                   "--x, if there is one)")
    p.add_argument("--strict-groups", action="store_true",
                   help="refuse (exit 2) to score windows of groups the checkpoint trained or validated on")
    p.add_argument("--report", help="also write the report as JSON: the scores as numbers (\"scores\": every "
                   "metric, the confusion matrix, class names, n), the printed lines (\"report\"), and with "
                   "--groups which windows come from groups seen in training ('leaky')")
    p.add_argument("--no-softmax", action="store_true", help="report raw logits instead of probabilities")
    p.add_argument("--normalize", action="store_true",
                   help="per-window z-score; only a check: the checkpoint already says whether training used it")
    p.add_named(p, "--fs", kind=positive_float, nargs="+", metavar="[NAME=]HZ", help="sampling rate of --x in Hz (default: "
                "X.signal.json beside it), checked against the checkpoint's; several inputs: NAME=HZ for each")
    p.add_argument("--channel-names", help="--x's channels, comma-separated (default: X.signal.json beside it): "
                   "reordered to the checkpoint's by name; one missing is refused")
    p.add_argument("--batch", type=positive_int, default=256, help="windows per forward pass")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    add_threads_flag(p)
    p.add_argument("--out", help="also write predictions to .csv, .npy or .jsonl (written atomically)")
    p.add_argument("--quiet", action="store_true",
                   help="do not print one line per window (--stream: per switch), nor the start-up line")
    add_stream_flags(p)
    return p


def main(argv=None):
    from biosig.errors import UserError
    from biosig import threads
    threads.quiet_waiting()             # before torch loads its OpenMP runtime (biosig/threads.py)
    threads.check_environment(sys.argv[1:] if argv is None else argv)    # our one line before libgomp's own
    args = get_args_parser().parse_args(argv)
    from biosig.cli.stream_flags import check_flags
    if args.x and not isinstance(args.x, dict) and os.path.isfile(args.x):
        from biosig.checkpoint import looks_like_checkpoint
        if looks_like_checkpoint(args.x):
            raise UserError(f"{args.x}: --x is a checkpoint, not windows or a recording; pass it as --ckpt "
                            f"{args.x} and the windows as --x")
    check_flags(args)
    if args.stream or args.lsl:
        from biosig.deploy.decode import run
        return run(args)
    if not args.x:
        raise UserError("--x is required (or --lsl NAME for a live stream)")
    from biosig import checkpoint
    from biosig.data import ledger, read_source
    from biosig.errors import warn
    from biosig.deploy.predictor import Predictor
    from biosig.device import resolve_device

    check_windows_files(args.x)
    check_outputs(args)
    device = resolve_device(args.device)
    ckpt = checkpoint.load(args.ckpt)
    predictor = Predictor(ckpt, device=device, path=args.ckpt)
    task = predictor.task
    if predictor.inputs or hasattr(task, "tasks") or any(isinstance(v, dict) for v in (args.x, args.y, args.fs)):
        from biosig.cli import infer_several
        return infer_several.run(args, ckpt, predictor)
    trained_zscore = predictor.preprocess.get("normalize") == "sample_zscore"
    if args.normalize and not trained_zscore:
        warn(f"--normalize ignored: {args.ckpt} was trained without it; applying the checkpoint's preprocessing")

    signal_cols, matched = signal_columns(args, predictor)
    # parquet: the label column is scored when present; .npy: only with --y
    X, y, groups, where = read_source(args.x, args.y, x_col=args.x_col, signal_cols=signal_cols,
                                      label_col=args.label_col, group_col=args.group_col, load="mmap", ndims=(3, 4),
                                      need_labels=bool(args.y), target_kind=task.target_kind)
    if matched:                         # said once the table is read: a refused run says its error alone
        warn(f"{args.x}: --signal-cols matched its columns ignoring case: {', '.join(matched)}")
    leak = check_groups(args, ckpt, groups, len(X))
    if y is not None:
        y = task.check_targets(y, where, source=f"the checkpoint's {task}")
    # before conform_input says what it made of raw samples: a refused run prints its error alone
    onsets = load_onsets(args, len(X)) if args.out and not args.out.endswith(".npy") else None
    from biosig.deploy.inputs import conform_input
    X = conform_input(X, args.x, args.fs, args.channel_names, predictor, args.ckpt)
    problem = predictor.input_problem(X.shape)
    if problem:
        raise UserError(f"{args.x}: {problem} (checkpoint {args.ckpt}){as_raw_windows(args.x, predictor)}")
    if predictor.train_frames and X.shape[-1] != predictor.train_frames:
        warn(f"{args.x}: windows have T={X.shape[-1]} frames, {args.ckpt} was trained on T={predictor.train_frames}; "
             f"predictions on other window lengths may be off")
    if task.target_kind is None and args.y:
        warn(f"--y ignored: {args.ckpt} was pretrained on windows alone (its report needs no targets)")

    softmax = not args.no_softmax
    said = threads.apply(args.threads)
    if not args.quiet:                  # stderr: stdout is the predictions and the report, which scripts read
        print(f"infer.py: {len(X)} windows on {device}, {said}", file=sys.stderr)
    pred = predictor.predict(X, batch=args.batch, softmax=softmax)     # batch by batch: X may be a memmap

    if not args.quiet:
        for i in range(len(pred["values"])):
            print(task.prediction_line(i, {k: v[i] for k, v in pred.items()}, softmax))
    scores = task.scores(pred, y, softmax)
    lines = task.report_lines(scores)
    if leak is not None:
        lines.append(ledger.describe(leak, args.ckpt))
    if lines:
        print("\n".join(lines))
    if args.out:
        from biosig.deploy.outputs import write_predictions
        write_predictions(args.out, task, pred, softmax, leak, onsets=onsets)
    if args.report:
        write_report(args, len(X), y is not None, task, scores, lines, leak)


def check_windows_files(x):
    """--x (each of several) is windows, .npy or parquet, not a recording."""
    from biosig.data import parquet
    from biosig.errors import UserError
    for path in (x.values() if isinstance(x, dict) else [x]):
        if not path.endswith(".npy") and not parquet.is_parquet(path) and os.path.isfile(path):
            raise UserError(f"{path}: infer.py scores windows (.npy or parquet); cut a recording into windows with "
                            f"python -m biosig.windows, or decode it whole, frame by frame, with --stream")


def write_report(args, n_windows, scored, task, scores, lines, leak):
    """--report: the scores as numbers, the printed lines and the group check, as JSON."""
    from biosig.atomic import write_json
    groups_part = None if leak is None else {k: v for k, v in leak.items() if k != "seen"}
    write_json(args.report, {"checkpoint": os.path.abspath(args.ckpt), "x": os.path.abspath(args.x),
                             "windows": int(n_windows), "scored": scored, "task": task.name,
                             "scores": scores, "report": lines,
                             "groups": groups_part, "leaky": None if leak is None else leak["leaky"]})


def check_outputs(args):
    """--out, --report, --onsets and --strict-groups: refused in one line before anything is read."""
    from biosig import checkpoint
    from biosig.deploy.inputs import check_out
    from biosig.errors import UserError
    inputs = [(f"--{flag}", path) for flag in ("x", "y") for path in
              (getattr(args, flag).values() if isinstance(getattr(args, flag), dict) else [getattr(args, flag)])]
    inputs += [("--ckpt", args.ckpt), ("--groups", args.groups)]
    check_out(args.out, inputs)
    if args.report:
        if os.path.splitext(args.report)[1] != ".json":
            raise UserError(f"{args.report}: --report must end in .json")
        checkpoint.check_writable(args.report, "--report", inputs=inputs + [("--out", args.out)])
    if args.onsets and (not args.out or args.out.endswith(".npy")):
        raise UserError("--onsets become the onset_s column of a .csv or .jsonl --out (a .npy --out holds the "
                        "predictions alone)")
    if args.strict_groups and not (args.groups or args.group_col):
        raise UserError("--strict-groups needs the windows' groups: --groups groups.npy (or --group-col with parquet)")


def signal_columns(args, predictor):
    """--signal-cols as a parquet --x is read -> (the columns, comma-separated, or None; the names
    matched ignoring case). The channels the model was trained on, by name: a parquet input is read
    by them (--signal-cols in another order are the same channels, read in the checkpoint's order,
    as .npy windows are reordered); a selection without one of them is refused (same count, other
    channels would run without complaint)."""
    from biosig.data import parquet
    signal_cols, matched = args.signal_cols, []
    if parquet.is_parquet(args.x) and parquet.parse_columns(signal_cols):
        # the table's own spelling first (pz names its column Pz), so a name is never matched
        # ignoring case against the checkpoint and then looked up as typed
        columns, matched = parquet.table_columns(parquet.parse_columns(signal_cols), args.x)
        signal_cols = ",".join(columns)
    if predictor.channels and parquet.is_parquet(args.x):
        given = parquet.parse_columns(signal_cols)
        if given is None:
            signal_cols = ",".join(predictor.channels)
        elif given != predictor.channels:
            from biosig.signals.contract import match_channels
            order = match_channels(given, predictor.channels, f"{args.x} --signal-cols {','.join(given)}",
                                   f" of the {len(predictor.channels)} {args.ckpt} was trained on "
                                   f"({','.join(predictor.channels)})")
            signal_cols = ",".join(given[i] for i in order)
    return signal_cols, matched


def as_raw_windows(path, predictor):
    """A 3-D .npy is read as one (C, F, T) window; when it would fit as windows of raw time
    (N, C, T) -> (N, C, 1, T), the words that say so (appended to the refusal), else ''."""
    import numpy as np
    if not path.endswith(".npy") or not os.path.isfile(path):
        return ""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        return ""
    if len(shape) != 3 or predictor.input_problem((shape[0], shape[1], 1, shape[2])):
        return ""
    return f"; {os.path.basename(path)}: {shape} was read as one (C, F, T) window; windows of raw time are " \
           f"(N, C, 1, T): X[:, :, None, :]"


def check_groups(args, ckpt, groups, n):
    """--groups / --group-col: the scored windows' groups against the checkpoint's ledger ->
    ledger.check()'s dict, or None when no groups were given. --strict-groups refuses a leak."""
    from biosig.data import ledger
    from biosig.data import load_groups
    from biosig.errors import UserError, warn
    if args.groups:
        if args.group_col:
            raise UserError("--groups and --group-col: give the windows' groups one way")
        groups = load_groups(args.groups, n)
    if groups is None:
        return None
    where = args.groups or f"{args.x} column '{args.group_col}'"
    if not (ckpt.get("ledger") or {}).get("train"):
        if args.strict_groups:
            raise UserError(f"{args.ckpt}: records no training groups (trained without --groups), so "
                            f"--strict-groups cannot check {where}")
        warn(f"{args.ckpt} records no training groups (trained without --groups): {where} not checked")
        return None
    result = ledger.check(ckpt["ledger"], groups)
    if args.strict_groups and result["leaky"]:
        raise UserError(f"{where}: refused (--strict-groups): {ledger.describe(result, args.ckpt)[len('groups: LEAKY: '):]}"
                        .replace("; scores on them are optimistic", ""))
    return result


def load_onsets(args, n):
    """--onsets, or the onsets.npy beside an .npy --x (biosig.windows writes one) -> (n,) float64
    seconds, or None. One given that does not fit the windows is refused; one found is skipped
    with a warning."""
    import numpy as np

    from biosig.errors import UserError, warn
    path = args.onsets or (os.path.join(os.path.dirname(args.x), "onsets.npy") if args.x.endswith(".npy") else None)
    if not path or (not args.onsets and not os.path.isfile(path)):
        return None
    try:
        onsets = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the window onsets ({e})") from None
    if onsets.shape == (n,) and np.issubdtype(onsets.dtype, np.number) and np.isfinite(onsets).all():
        return onsets.astype(np.float64)
    problem = f"{path}: window onsets are ({n},) finite seconds, one per window of {args.x}; got {onsets.dtype} " \
              f"{tuple(onsets.shape)}"
    if args.onsets:
        raise UserError(problem)
    warn(problem + ": no onset_s column")
    return None


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
