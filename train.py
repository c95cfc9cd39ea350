"""Train a model on biosignal windows X (N, C, F, T) with targets y (N,).

The command's code and its examples are in biosig/cli/train.py (`python train.py --help`);
`pip install .` installs the same command as biosig-train.
"""
from biosig.cli.train import get_args_parser, main     # the code: biosig/cli/train.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
