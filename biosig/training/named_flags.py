"""Options that take one value, or NAME=VALUE for each of several inputs or targets (--x ppg=ppg.npy
--x acc=acc.npy, --task hr=regression, --fs ppg=64,acc=32): their argparse type and the parser
that settles them once parsed (into the one value as before, or a dict name -> value)."""
import argparse
import os
import re

from ..errors import ArgumentParser

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*$")
NAMED = {}          # dest -> (the value's type, its default, choices or None): options that take name=value
# (train.py's, filled by biosig.training.options.train_parser)


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


class TrainParser(ArgumentParser):
    """train.py's parser: the options in NAMED take one value, or NAME=VALUE for each of several
    inputs (--x ppg=ppg.npy --x acc=acc.npy) or targets (--y hr=hr.npy --task hr=regression). After
    parsing, such an option holds its one value as before, or a dict name -> value."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        for dest, (_, default, choices) in NAMED.items():
            if not hasattr(parsed, dest):           # explicit_options' parse: defaults suppressed
                continue
            value = settle_named(dest, getattr(parsed, dest), default, choices)
            if isinstance(value, str) and value.startswith("error: "):
                self.error(value[len("error: "):])
            setattr(parsed, dest, value)
        return parsed, extras


def settle_named(dest, items, default, choices):
    """The (name, value) pairs given for one option -> its value: the default, the one value, or
    {name: value}; "error: ..." for a contradiction."""
    flag = "--" + dest.replace("_", "-")
    if items is None:
        return default
    items = [item for group in items for item in group]
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
