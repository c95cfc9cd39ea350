"""Train a model on biosignal windows X (N, C, F, T) with labels y (N,).

    python train.py --x X.npy --y y.npy --save ckpt.pt
    torchrun --nproc_per_node=2 train.py --x X.npy --y y.npy --save ckpt.pt   # DDP
    python train.py --resume runs/<run>/last.pt                               # continue

See README.md for every option, the run directory and the checkpoint format.
"""
import argparse
import copy
import sys

from biosig.errors import (ArgumentParser, HelpFormatter, nonnegative_float, nonnegative_int, number,
                           positive_float, positive_int)


def batch_limit(text):
    """--limit-train-batches: a fraction in (0, 1) or a whole number of batches >= 1."""
    value = number(float, 0, low_open=True)(text)
    if value >= 1 and value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: give a fraction below 1 or a whole number of batches")
    return value


def get_args_parser():
    p = ArgumentParser(description="Train a biosig model on (N, C, F, T) windows.",
                                formatter_class=HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--x", help="X.npy, float array (N, C, F, T), opened memory-mapped; or windows.parquet "
                   "(a file or a directory of them, one row per window, see README)")
    d.add_argument("--y", help="y.npy, integer labels (N,) in [0, K-1]; with parquet --x, the label column "
                   "(default: --label-col)")
    d.add_argument("--x-val", help="explicit validation windows (.npy or parquet); overrides --val-split")
    d.add_argument("--y-val", help="labels of --x-val (.npy, or a column name)")
    d.add_argument("--x-test", help="test windows: the best checkpoint is evaluated on them once, at the end "
                   "(summary.json 'test')")
    d.add_argument("--y-test", help="labels of --x-test (.npy, or a column name)")
    d.add_argument("--x-col", default="x", help="parquet: column holding each window as (C, F, T) or (C, T) lists")
    d.add_argument("--signal-cols", help="parquet: comma-separated channel columns, each (T,) or (F, T) lists "
                   "(instead of --x-col)")
    d.add_argument("--label-col", default="label", help="parquet: label column")
    d.add_argument("--group-col", help="parquet: group column (e.g. subject) for --split group")
    d.add_argument("--classes", type=number(int, 2), help="number of classes K (default: max label + 1)")
    d.add_argument("--elec", type=positive_int, help="channels/electrodes C (default: from X; checked when given)")
    d.add_argument("--bands", type=positive_int, help="bands/feature rows F (default: from X; checked when given)")
    d.add_argument("--class-names", help="JSON list of K class names, stored in the checkpoint")
    d.add_argument("--val-split", type=number(float, 0, 1, low_open=True, high_open=True), default=0.2, help="fraction of windows held out for validation")
    d.add_argument("--split", choices=["stratified", "random", "group"], default="stratified",
                   help="how to pick validation windows: stratified keeps class proportions; group keeps "
                   "each group (--groups / --group-col, e.g. subject) on one side only")
    d.add_argument("--groups", help="groups.npy (N,): subject/recording id per window, for --split group")
    d.add_argument("--standardize", action="store_true", help="per-(channel, band) mean/std from the training "
                   "split only, stored in the checkpoint and applied by infer.py")
    d.add_argument("--normalize", action="store_true", help="per-window z-score over (F, T) per electrode "
                   "(recorded in the checkpoint; infer.py repeats it)")
    d.add_argument("--load", choices=["auto", "mmap", "ram"], default="auto",
                   help="read X from disk per batch (mmap), whole into RAM, or ram only if it fits easily")
    d.add_argument("--workers", type=nonnegative_int, default=0, help="processes reading batches (0: read in the main process)")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=["eeg2arm"], default="eeg2arm", help="architecture")
    m.add_argument("--cnn-time-pool", type=positive_int, default=2, help="time pooling factor of the CNN stem")
    m.add_argument("--frame-embed", type=positive_int, default=256, help="Transformer embedding size per frame")
    m.add_argument("--layers", type=positive_int, default=2, help="Transformer layers")
    m.add_argument("--heads", type=positive_int, default=4, help="attention heads (1 if it does not divide --frame-embed)")
    m.add_argument("--drop", type=number(float, 0, 1, high_open=True), default=0.1, help="dropout probability")
    o = p.add_argument_group("optimization")
    o.add_argument("--epochs", type=positive_int, default=30, help="epochs to train (a resumed run: the total, so --epochs 50 extends a 30-epoch run)")
    o.add_argument("--batch", type=positive_int, default=64, help="global batch size (split across torchrun processes)")
    o.add_argument("--accum", type=positive_int, default=1, help="gradient accumulation steps (effective batch = batch x accum)")
    o.add_argument("--lr", type=positive_float, default=3e-4, help="AdamW learning rate")
    o.add_argument("--wd", type=nonnegative_float, default=1e-4, help="AdamW weight decay")
    o.add_argument("--clip", type=nonnegative_float, default=1.0, help="gradient-norm clipping (0: off)")
    o.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                   help="mixed precision; auto = fp16 + GradScaler on CUDA, off elsewhere")
    o.add_argument("--monitor", choices=["val_loss", "val_acc", "val_f1", "val_balanced_acc"], default=None,
                   help="metric for best checkpoint, LR schedule and early stopping (default val_loss)")
    o.add_argument("--lr-patience", type=nonnegative_int, default=3, help="ReduceLROnPlateau patience (epochs)")
    o.add_argument("--lr-factor", type=number(float, 0, 1, low_open=True, high_open=True), default=0.5, help="ReduceLROnPlateau factor")
    o.add_argument("--patience", type=nonnegative_int, default=0, help="early stopping after this many epochs without improvement (0: off)")
    o.add_argument("--min-delta", type=nonnegative_float, default=0.0, help="smallest change that counts as an improvement")
    o.add_argument("--limit-train-batches", type=batch_limit, default=None,
                   help="train on only this many batches per epoch (or this fraction if < 1), for quick runs")
    o.add_argument("--seed", type=nonnegative_int, default=1337)
    o.add_argument("--deterministic", action="store_true", help="deterministic algorithms (bitwise-repeatable on CPU)")
    r = p.add_argument_group("run")
    r.add_argument("--save", help="best checkpoint path (.pt), written atomically")
    r.add_argument("--run-dir", help="directory for config.json, metrics.jsonl, summary.json, last.pt "
                   "(default: runs/<date-time>, never an existing run)")
    r.add_argument("--resume", help="continue the run whose RUN_DIR/last.pt this is")
    r.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    r.add_argument("--compile", action="store_true", help="torch.compile the model")
    r.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend (aot_eager compiles fast on CPU; inductor is fastest on CUDA)")
    r.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over all processes under torchrun")
    return p


def explicit_options(parser, argv):
    """Names of the options given on the command line (not left at their defaults)."""
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(quiet.parse_known_args(argv)[0]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        from biosig.training import run   # after parsing, so --help is instant
    except KeyboardInterrupt:
        from biosig.errors import Interrupted
        raise Interrupted("interrupted before training started; nothing was written") from None
    run(args, explicit_options(parser, argv))


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
