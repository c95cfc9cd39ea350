"""Predict with a biosig checkpoint; nothing else needed (preprocessing comes from the checkpoint).

    python infer.py --ckpt ckpt.pt --x X_infer.npy            # (B, C, F, T) or one (C, F, T)
    python infer.py --ckpt ckpt.pt --x X.npy --y y.npy --out preds.csv
"""
import argparse
import os
import sys


def get_args_parser():
    p = argparse.ArgumentParser(description="Run a biosig checkpoint on windows.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py --save")
    p.add_argument("--x", required=True, help="X.npy (B, C, F, T) or a single window (C, F, T)")
    p.add_argument("--y", help="labels.npy (B,): also print accuracy, macro-F1 and the confusion matrix")
    p.add_argument("--no-softmax", action="store_true", help="report raw logits instead of probabilities")
    p.add_argument("--normalize", action="store_true",
                   help="per-window z-score; only a check: the checkpoint already says whether training used it")
    p.add_argument("--batch", type=int, default=256, help="windows per forward pass")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--out", help="also write predictions to .csv, .npy or .jsonl (written atomically)")
    p.add_argument("--quiet", action="store_true", help="do not print one line per window")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    import numpy as np

    from biosig import checkpoint, runs
    from biosig.data import load_labels, load_windows
    from biosig.errors import UserError
    from biosig.inference import Predictor
    from biosig.metrics import classification_report, format_confusion
    from biosig.training import resolve_device

    if args.out:
        if os.path.splitext(args.out)[1] not in (".csv", ".npy", ".jsonl"):
            raise UserError(f"{args.out}: --out must end in .csv, .npy or .jsonl")
        checkpoint.check_writable(args.out, "--out")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    device = resolve_device(args.device)
    predictor = Predictor(checkpoint.load(args.ckpt), device=device, path=args.ckpt)
    trained_zscore = predictor.preprocess.get("normalize") == "sample_zscore"
    if args.normalize and not trained_zscore:
        print(f"warning: --normalize ignored: {args.ckpt} was trained without it; "
              "applying the checkpoint's preprocessing", file=sys.stderr)

    X = load_windows(args.x, load="mmap", ndims=(3, 4))
    if X.ndim == 3:
        X = X[None]
    problem = predictor.input_problem(X.shape)
    if problem:
        raise UserError(f"{args.x}: {problem} (checkpoint {args.ckpt})")
    y = None
    if args.y:
        y, _ = load_labels(args.y, len(X), args.x, predictor.task.n_classes) if len(X) > 1 else \
            (np.load(args.y, allow_pickle=False).reshape(-1).astype(np.int64), None)

    preds, scores, values = [], [], []
    for start in range(0, len(X), args.batch):
        out = predictor.predict(np.asarray(X[start:start + args.batch]), batch=args.batch,
                                softmax=not args.no_softmax)
        preds.append(out["pred"]), scores.append(out["score"]), values.append(out["values"])
    pred, score, values = np.concatenate(preds), np.concatenate(scores), np.concatenate(values)

    names = predictor.class_names
    if not args.quiet:
        key = "logit" if args.no_softmax else "conf"
        for i, (p, s) in enumerate(zip(pred, score)):
            print(f"[sample {i}] pred={p} {key}={s:.4f}" + (f" ({names[p]})" if names else ""))
    if y is not None:
        probs = values if not args.no_softmax else _softmax(values)
        rep = classification_report(probs, y, predictor.task.n_classes)
        auroc = f"{rep['auroc']:.4f}" if rep["auroc"] is not None else "n/a"
        print(f"accuracy={rep['acc']:.4f} macro_f1={rep['f1']:.4f} balanced_acc={rep['balanced_acc']:.4f} "
              f"auroc={auroc} (n={len(y)})")
        print(format_confusion(rep["confusion"], names))
    if args.out:
        write_predictions(args.out, pred, score, values, "logit" if args.no_softmax else "prob", runs)


def _softmax(v):
    import numpy as np
    e = np.exp(v - v.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def write_predictions(path, pred, score, values, kind, runs):
    """Atomically write predictions: .npy (B, K) values, .csv or .jsonl one row per window."""
    import json
    import tempfile

    import numpy as np
    ext = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=ext, dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb" if ext == ".npy" else "w") as f:
            if ext == ".npy":
                np.save(f, values.astype(np.float32))
            elif ext == ".csv":
                f.write("sample,pred,score," + ",".join(f"{kind}_{k}" for k in range(values.shape[1])) + "\n")
                for i in range(len(pred)):
                    f.write(f"{i},{pred[i]},{score[i]:.6g}," + ",".join(f"{v:.6g}" for v in values[i]) + "\n")
            else:
                for i in range(len(pred)):
                    f.write(json.dumps({"sample": i, "pred": int(pred[i]), "score": float(score[i]),
                                        kind: [float(v) for v in values[i]]}) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
