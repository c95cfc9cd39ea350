"""Predict with a biosig checkpoint; nothing else needed (preprocessing comes from the checkpoint).

The command's code and its examples are in biosig/cli/infer.py (`python infer.py --help`);
`pip install .` installs the same command as biosig-infer.
"""
from biosig.cli.infer import get_args_parser, main     # the code: biosig/cli/infer.py

__all__ = ["get_args_parser", "main"]

if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
