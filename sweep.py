"""Run train.py over a grid of its flags (x seeds), in parallel, resumably.

The command's code and its examples are in biosig/cli/sweep.py (`python sweep.py --help`);
`pip install .` installs the same command as biosig-sweep.
"""
import sys

from biosig.cli.sweep import get_args_parser, main     # the code: biosig/cli/sweep.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    sys.exit(run_cli(main))
