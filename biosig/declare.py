"""What a model or a task declares about its constructor options, so that registering one adds
its train.py flags, its --model-kwargs names, its checks and its help: Option, the option kinds
that the rest of the package reads (never a hand-kept list), and the values a run gives them.

A leaf: imports only biosig.errors (models, tasks, training and sweeps all read it).

Kinds of an option:
  path    a file: stored as an absolute path, so a run resumes, and a sweep trial runs, from
          any directory (a --y naming a parquet label column stays a name)
  run     defines the run: a resumed run takes it from last.pt, and one given again must agree
          (the others -- epochs, patience, device, workers, ... -- may change on resume)
  trial   set by sweep.py for each trial (--run-dir, --save, --resume)
"""
import argparse
from dataclasses import dataclass, field
from typing import Callable

from .errors import UserError

PATH, RUN, TRIAL = "path", "run", "trial"


@dataclass(frozen=True)
class Option:
    """One constructor argument of a model (or setting of a task).

    name: the constructor argument; type: parses text and checks its range (errors.number);
    flag: a train.py flag of its own (the guide's --frame-embed), else only --model-kwargs
    name=value reaches it; dest: the flag's argparse name when it differs from `name`."""
    name: str
    type: Callable
    default: object
    help: str
    flag: str = None
    dest: str = None
    kinds: frozenset = field(default=frozenset({RUN}))

    @property
    def key(self):
        return self.dest or self.name


def declared_values(options, args, kwargs=None, owner="model"):
    """Constructor kwargs from the declared `options`: each one's flag if given, else --model-kwargs
    name=value (parsed by the option's type), else its default. An unknown name in `kwargs`, or
    one given both ways, is a one-line error."""
    known = {opt.name: opt for opt in options}
    values = {}
    for name, text in [pair for word in kwargs or [] for pair in word]:
        if name in values:
            raise UserError(f"--model-kwargs {name}: given twice")
        opt = known.get(name)
        if opt is None:
            raise UserError(f"--model-kwargs {name}: not an option of {owner} (it takes "
                            f"{', '.join(sorted(known)) or 'none'})")
        if opt.flag and getattr(args, opt.key, None) is not None:
            raise UserError(f"--model-kwargs {name}: given twice (also as {opt.flag})")
        try:
            values[name] = opt.type(text)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise UserError(f"--model-kwargs {name}={text}: {e}") from None
    for opt in options:
        if opt.name in values:
            continue
        given = getattr(args, opt.key, None) if opt.flag else None
        values[opt.name] = opt.default if given is None else given
    return values


def own_values(registry, name, args, what, kwargs=None):
    """The constructor options of registry[name] (a model, what="model", or a task) from train.py's
    args: its flags, --model-kwargs (`kwargs`), else its defaults. A flag that only another member
    of the registry has (--frame-embed with --model tcn, --loss with --task classification), an
    unknown name or a bad value: one line."""
    cls = registry[name]
    own = {opt.key for opt in cls.options}
    for other in registry.values():
        for opt in other.options:
            if opt.flag and opt.key not in own and getattr(args, opt.key, None) is not None:
                raise UserError(f"{opt.flag} is an option of --{what} {other.name}, not of --{what} {name}")
    return declared_values(cls.options, args, kwargs, owner=f"--{what} {name}")
