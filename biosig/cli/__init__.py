"""The command-line programs. Each module has get_args_parser() and main(argv); the checkout's
train.py, infer.py and sweep.py run them, and `pip install .` installs them as commands:

    biosig-train     biosig.cli.train      (train.py)
    biosig-infer     biosig.cli.infer      (infer.py; --stream/--lsl flags: cli/stream_flags.py)
    biosig-sweep     biosig.cli.sweep      (sweep.py)
    biosig-convert   biosig.cli.convert    (python -m biosig.convert)
    biosig-export    biosig.cli.export     (python -m biosig.export)
    biosig-report    biosig.cli.report     (python -m biosig.report)
    biosig-examples  biosig.cli.examples   (python -m biosig.examples)
    biosig-bandpower biosig.cli.bandpower  (python -m biosig.bandpower)
    biosig-windows   biosig.cli.windows    (python -m biosig.windows)

The functions below are those commands' entry points (pyproject.toml [project.scripts]). A command
parses its flags and calls the library; the library holds no argparse.

May import: everything (the top layer; nothing imports cli but the entry points and shims).
"""
import importlib
import sys


def _command(module):
    def entry():
        from biosig.errors import run_cli
        sys.exit(run_cli(importlib.import_module(module).main))
    entry.__name__ = module.rsplit(".", 1)[-1]
    entry.__doc__ = f"The {module} command: main() with one-line errors (exit 2) and Ctrl-C handling."
    return entry


train = _command("biosig.cli.train")
infer = _command("biosig.cli.infer")
sweep = _command("biosig.cli.sweep")
convert = _command("biosig.cli.convert")
export = _command("biosig.cli.export")
report = _command("biosig.cli.report")
examples = _command("biosig.cli.examples")
bandpower = _command("biosig.cli.bandpower")
windows = _command("biosig.cli.windows")
