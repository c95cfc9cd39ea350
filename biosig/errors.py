"""The one exception type for errors a user can cause (bad file, bad flag, bad data), and the
scripts' shared CLI conventions.

The scripts turn a UserError into a one-line message on stderr and exit status 2; anything
else is a bug and stays a traceback. Ctrl-C ends in one line too (exit 130), saying where
the run stopped and how to continue it.
"""
import argparse
import math
import os
import re
import sys


def stop_on_sigterm():
    """Make SIGTERM (kill, scancel, a preempted job) stop the program as Ctrl-C does: it raises
    KeyboardInterrupt("SIGTERM"), so cleanup runs and Interrupted.stopped_by() says 143."""
    import signal

    def terminated(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, terminated)


def prog(module):
    """A module tool's name in its usage line: biosig-NAME when run as the installed command,
    else python -m biosig.NAME."""
    command = "biosig-" + module.rsplit(".", 1)[-1]
    return command if os.path.basename(sys.argv[0] or "") == command else f"python -m {module}"


class UserError(Exception):
    """A problem with the user's input: message is one line that names the file or flag."""


class Interrupted(Exception):
    """Ctrl-C (or SIGINT, or SIGTERM) caught by a script that knows how to continue: message is
    the one line to print (empty on the ranks of a torchrun job that do not print); code the
    exit status (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message="", code=130):
        super().__init__(message)
        self.code = code

    @staticmethod
    def stopped_by(interrupt):
        """The KeyboardInterrupt a script caught -> (words for the message, exit status):
        ("interrupted", 130), or ("stopped by SIGTERM", 143) when train.py's SIGTERM handler raised it."""
        if str(interrupt) == "SIGTERM":
            return "stopped by SIGTERM", 143
        return "interrupted", 130


def _is_main_process():
    return os.environ.get("RANK", "0") in ("", "0")


def warn(message):
    """`warning: <message>` on stderr, once per job (only rank 0 of a torchrun job prints)."""
    if _is_main_process():
        print(f"warning: {message}", file=sys.stderr)


def needs(what, *packages):
    """The one form of a missing optional package: `<what> needs <packages>: pip install <packages>`.
    It names PyPI's own packages, never `biosig[extra]`: PyPI's `biosig` is another project, so
    that form would install the wrong thing (from a clone: pip install -e ".[extra]")."""
    return UserError(f"{what} needs {', '.join(packages)}: pip install {' '.join(packages)}")


def run_cli(main, argv=None):
    """Call main(argv); a UserError becomes `error: <message>` and exit status 2, Ctrl-C one
    line and exit status 130."""
    try:
        return main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        if str(e):
            print(str(e), file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        if _is_main_process():
            print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and closed: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


def closest_flag(name, flags):
    """' (did you mean --epochs?)' for an unknown flag `name` among `flags` (an option it starts,
    else the nearest by difflib), or '' when none is close."""
    import difflib
    flags = sorted(f for f in flags if f.startswith("--") or not name.startswith("--"))
    started = [f for f in flags if f.startswith(name)] if len(name) > 2 else []
    near = started if len(started) == 1 else difflib.get_close_matches(name, flags, n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (`error: --lr: ...`) and exit status 2, like every
    other user error: no usage block in front of it (`--help` still shows it). No prefix matching
    (`--epoch` is not `--epochs`: a typo would silently become another option); an unknown flag
    names the closest one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.named = {}         # dest -> (its default, choices or None): options add_named declared

    def add_named(self, group, *flags, kind=str, default=None, choices=None, is_path=False, **kwargs):
        """An option that takes one VALUE, or NAME=VALUE for each of several inputs or targets (--x
        ppg=ppg.npy --x acc=acc.npy, --fs ppg=64,acc=32): once parsed it holds its one value, as a
        plain option would, or a dict name -> value. `group`: the parser or one of its groups."""
        action = group.add_argument(*flags, type=named_item(kind, is_path), action="append", default=None, **kwargs)
        self.named[action.dest] = (default, choices)
        return action

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        for dest, (default, choices) in self.named.items():
            if not hasattr(parsed, dest):           # a parse with defaults suppressed (explicit_options)
                continue
            value = settle_named(dest, getattr(parsed, dest), default, choices)
            if isinstance(value, str) and value.startswith("error: "):
                self.error(value[len("error: "):])
            setattr(parsed, dest, value)
        return parsed, extras

    def parse_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else [str(a) for a in args]
        # an unknown flag first: it is often why a required one looks missing (`--ou o` for --out)
        for token in argv[:argv.index("--")] if "--" in argv else argv:
            name = token.split("=", 1)[0]
            if name.startswith("-") and len(name) > 1 and not _is_number(name) \
                    and name not in self._option_string_actions:
                self.error(f"unrecognized argument {name}{closest_flag(name, self._option_string_actions)}")
        args, extras = self.parse_known_args(argv, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return args

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*$")


def named_item(kind, is_path=False):
    """An argparse type for an option that takes VALUE or NAME=VALUE (several: NAME=V,NAME=V, or
    the flag again): -> a list of (name or None, value). A path that exists as it is stays one
    path, though it holds an "=" (runs/lr=0.1/X.npy)."""
    def parse(text):
        if is_path and os.path.exists(text):
            return [(None, text)]
        items = []
        for part in text.split(",") if not is_path else [text]:
            name, eq, value = part.partition("=")
            if eq and NAME.match(name):
                items.append((name, kind(value)))
            elif items or (not is_path and "," in text):
                raise argparse.ArgumentTypeError(f"{part!r}: expected NAME=VALUE, e.g. ppg=64")
            else:
                items.append((None, kind(part)))
        return items
    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def settle_named(dest, items, default, choices):
    """The (name, value) pairs given for one option -> its value: the default, the one value, or
    {name: value}; "error: ..." for a contradiction."""
    flag = "--" + dest.replace("_", "-")
    if items is None:
        return default
    while any(isinstance(item, list) for item in items):      # per flag, per word (nargs), per NAME=V,...
        items = [i for item in items for i in (item if isinstance(item, list) else [item])]
    names = [n for n, _ in items]
    for _, value in items:
        if choices is not None and value not in choices:
            return f"error: {flag}: invalid choice {value!r} (choose from {', '.join(choices)})"
    if all(n is None for n in names):
        if len(items) > 1:
            return f"error: {flag} given {len(items)} times; several need names: {flag} NAME=VALUE for each"
        return items[0][1]
    if any(n is None for n in names):
        return f"error: {flag}: give every value a name (NAME=VALUE) or give one value without a name"
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"error: {flag} {twice[0]}=... given twice"
    return dict(items)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows a default only where there is one (not "(default: None)" on every flag)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# What an option's type raises on a bad value: argparse prints it as that flag's one-line error, and
# declare.declared_values as --model-kwargs name=value's. Models and tasks raise it without importing argparse.
BadValue = argparse.ArgumentTypeError


def number(kind=float, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: `kind` (int or float) within [low, high] (an end excluded when *_open).
    argparse turns the ValueError into `error: argument --lr: ...`, one line, exit 2."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {describe_range(low, high, low_open, high_open)}")
        return value
    parse.__name__ = kind.__name__       # argparse names the type in some messages
    return parse


def one_of(*names):
    """An argparse type for an option declared by a model or task (Option), which cannot use
    argparse's `choices`: one of `names`, else `'x': choose a, b or c`."""
    def parse(text):
        if text not in names:
            raise argparse.ArgumentTypeError(f"{text!r}: choose {', '.join(names[:-1])} or {names[-1]}")
        return text
    return parse


def describe_range(low, high, low_open, high_open):
    if high is None:
        return f"must be {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"must be {'<' if high_open else '<='} {high:g}"
    return f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def positive_int_or(word):
    """An argparse type: a positive integer, or `word` (returned as is)."""
    def parse(text):
        if text == word:
            return text
        try:
            return positive_int(text)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{e} (or {word})") from None
    parse.__name__ = "int"
    return parse


# The ranges every script shares
positive_int = number(int, 1)
nonnegative_int = number(int, 0)
positive_float = number(float, 0, low_open=True)
nonnegative_float = number(float, 0)
