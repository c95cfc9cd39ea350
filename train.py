"""Train a model on biosignal windows X (N, C, F, T) with targets y (N,).

    python train.py --x X.npy --y y.npy --save ckpt.pt
    torchrun --nproc_per_node=2 train.py --x X.npy --y y.npy --save ckpt.pt   # DDP
    python train.py --resume runs/<run>/last.pt                               # continue

The options come from biosig/options.py (with each registered model's and task's own);
see README.md for every option, the run directory and the checkpoint format.
"""
from biosig.cli.train import get_args_parser, main     # the code: biosig/cli/train.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
