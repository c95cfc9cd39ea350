"""infer.py for a checkpoint of several inputs or several targets (biosig/cli/infer.py hands over):

    python infer.py --ckpt fused.pt --x ppg=ppg.npy --x acc=acc.npy                # every input by name
    python infer.py --ckpt fused.pt --x ppg=ppg.npy                                 # acc absent (--modality-drop)
    python infer.py --ckpt multi.pt --x X.npy --y hr=hr.npy --y act=act.npy --out preds.csv

Each input is checked against its own signal contract (channels by name, sampling rate) and all
must hold the same number of windows. An input the checkpoint was trained with may be left out
only when it trained with --modality-drop (a missing sensor is never zeros by accident). Every
target's predictions are printed and written: .csv one column per target's value ("hr:pred",
"act:pred", "act:prob_walk", ...), .jsonl {"sample", NAME: {...}}, .npy one file per target
(preds.hr.npy, preds.act.npy) holding its "values".
"""
import os
import sys
from types import SimpleNamespace


def run(args, ckpt, predictor):
    """Predict, print and write as infer.py's main does, for several inputs or targets."""
    import numpy as np

    from biosig import named, threads
    from biosig.data import read_source
    from biosig.data.npy import read_targets
    from biosig.deploy.inputs import conform_input
    from biosig.errors import UserError
    task = predictor.task
    inputs = _inputs(args, predictor)
    X = {}
    for name, path in inputs.items():
        Xm, _, _, _ = read_source(path, None, x_col=args.x_col, signal_cols=args.signal_cols, label_col=args.label_col,
                                  load="mmap", ndims=(3, 4), need_labels=False, target_kind=None)
        fs = args.fs.get(name) if isinstance(args.fs, dict) else args.fs
        signal = predictor.signal.get(name, {}) if predictor.inputs else predictor.signal
        contract = SimpleNamespace(signal=signal, channels=signal.get("channels"))
        X[name] = conform_input(Xm, path, fs, None, contract, args.ckpt)
    counts = {inputs[k]: len(v) for k, v in X.items()}
    if len(set(counts.values())) > 1:
        raise UserError("the inputs must cover the same windows: " + ", ".join(f"{p} has {n}" for p, n in counts.items()))
    X = X if predictor.inputs else X[None]
    problem = predictor.input_problem(named.each(lambda a: tuple(a.shape), X))
    if problem:     # the input at fault (its file), else the checkpoint (an input it needs is missing)
        at = next((p for k, p in inputs.items() if k and f"input {k}:" in problem), args.ckpt)
        raise UserError(f"{at}: {problem}" + (f" (checkpoint {args.ckpt})" if at != args.ckpt else ""))
    n = named.rows(X)
    first = next(iter(inputs.values()))
    y = _targets(args, task, n, first, read_targets)
    softmax = not args.no_softmax
    said = threads.apply(args.threads)
    if not args.quiet:
        print(f"infer.py: {n} windows of {', '.join(f'{k}' for k in inputs if k) or first} on {predictor.device}, "
              f"{said}", file=sys.stderr)
    pred = predictor.predict(X, batch=args.batch, softmax=softmax)
    if not args.quiet:
        for i in range(n):
            print(task.prediction_line(i, {k: v[i] for k, v in pred.items()}, softmax))
    scores = task.scores(pred, y, softmax)
    lines = task.report_lines(scores)
    if lines:
        print("\n".join(lines))
    if args.out:
        _write(args.out, task, pred, softmax, np)
    if args.report:
        from biosig.atomic import write_json
        write_json(args.report, {"checkpoint": os.path.abspath(args.ckpt),
                                 "x": {k or "x": os.path.abspath(v) for k, v in inputs.items()}, "windows": int(n),
                                 "scored": y is not None, "task": task.name, "scores": scores, "report": lines})


def _inputs(args, predictor):
    """--x as {input name: path} ({None: path} for a model of one input), checked against the
    checkpoint's inputs: unnamed for several, a name it does not know."""
    from biosig.errors import UserError
    names = predictor.inputs
    if names is None:
        if isinstance(args.x, dict):
            raise UserError(f"{args.ckpt}: takes one input; give --x PATH without a name")
        return {None: args.x}
    if not isinstance(args.x, dict):
        raise UserError(f"{args.ckpt}: takes the inputs {', '.join(names)}: give --x NAME=PATH for each")
    for name in args.x:
        if name not in names:
            raise UserError(f"--x {name}=...: not an input of {args.ckpt} (its inputs are {', '.join(names)})")
    if isinstance(args.fs, dict):
        for name in args.fs:
            if name not in args.x:
                raise UserError(f"--fs {name}=...: not one of the inputs given ({', '.join(args.x)})")
    return dict(args.x)


def _targets(args, task, n, x_path, read_targets):
    """--y: one target's file, or {name: file} for several targets -> checked targets or None."""
    from biosig.errors import UserError
    if not args.y:
        return None
    members = getattr(task, "tasks", None)
    if members is None:
        if isinstance(args.y, dict):
            raise UserError(f"{args.ckpt}: predicts one target; give --y PATH without a name")
        return task.check_targets(read_targets(args.y, n, x_path, task.target_kind), args.y,
                                  source=f"the checkpoint's {task}")
    if not isinstance(args.y, dict):
        raise UserError(f"{args.ckpt}: predicts the targets {', '.join(members)}: give --y NAME=PATH for the ones "
                        f"to score")
    y = {}
    for name, path in args.y.items():
        if name not in members:
            raise UserError(f"--y {name}=...: not a target of {args.ckpt} (its targets are {', '.join(members)})")
        member = members[name]
        y[name] = member.check_targets(read_targets(path, n, x_path, member.target_kind), path,
                                       source=f"the checkpoint's {member}")
    return y


def _write(path, task, pred, softmax, np):
    """--out: .npy the values (one file per target, stem.NAME.npy, for several); .csv/.jsonl rows."""
    from biosig.atomic import atomic_path
    from biosig.deploy.outputs import write_predictions
    stem, ext = os.path.splitext(path)
    members = getattr(task, "member_predictions", None)
    if ext != ".npy" or members is None:
        return write_predictions(path, task, pred, softmax)
    for name, p in members(pred).items():
        with atomic_path(f"{stem}.{name}{ext}") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, p["values"].astype(np.float32))
