"""Search spaces: a grid file whose flags may hold distributions instead of lists of values.

    {"lr": {"log": [1e-4, 1e-2]}, "drop": {"uniform": [0, 0.5]},
     "model": {"choice": ["eegnet", "inception"]}, "batch": {"int": [16, 128, 16]}, "normalize": [true, false]}

log: log-uniform over [low, high] (0 < low < high); uniform: over [low, high]; int: integers
low, low + step, ... up to high (step 1 unless given); choice (or a plain list): one of the values.
Sampled floats are rounded to 4 significant digits, so that commands and trial ids stay readable.
`sweep.py --search random` draws points itself (point i depends only on --sample-seed and i, so
the same command draws the same points and resumes); `--search optuna` asks Optuna's TPE.
"""
import json
import math

import numpy as np

from ..errors import UserError

KINDS = ("log", "uniform", "int", "choice")
FORM = ('{"log": [low, high]}, {"uniform": [low, high]}, {"int": [low, high]} or {"int": [low, high, step]}, '
        '{"choice": [values]}')


def is_distribution(values):
    return isinstance(values, dict)


def check_distribution(where, flag, spec):
    """A distribution's shape and bounds; returns it as (kind, args). One line if it is wrong."""
    if len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise UserError(f"{where}: '{flag}': {json.dumps(spec)[:60]} is not a distribution; write one of {FORM}")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise UserError(f"{where}: '{flag}': choice takes a non-empty list of values")
        return kind, args
    numbers = isinstance(args, list) and all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                             and math.isfinite(a) for a in args)
    if kind == "int":
        if not (numbers and len(args) in (2, 3) and all(float(a).is_integer() for a in args)):
            raise UserError(f"{where}: '{flag}': int takes [low, high] or [low, high, step], whole numbers")
        low, high, step = int(args[0]), int(args[1]), int(args[2]) if len(args) == 3 else 1
        if not (low < high and step >= 1):
            raise UserError(f"{where}: '{flag}': int [{low}, {high}, {step}]: needs low < high and a step of 1 or more")
        return kind, [low, high, step]
    if not (numbers and len(args) == 2):
        raise UserError(f"{where}: '{flag}': {kind} takes [low, high], two numbers")
    low, high = args
    if not low < high:
        raise UserError(f"{where}: '{flag}': {kind} [{low}, {high}]: low must be below high")
    if kind == "log" and low <= 0:
        raise UserError(f"{where}: '{flag}': log [{low}, {high}]: a log scale needs low > 0")
    return kind, [low, high]


def representative(grids):
    """The grids with each distribution replaced by the values that bound it (low and high, or
    its choices): what the checks against train.py's parser see before anything runs."""
    out = []
    for grid in grids:
        rep = {}
        for flag, values in grid.items():
            if is_distribution(values):
                kind, args = next(iter(values.items()))
                rep[flag] = list(args) if kind == "choice" else [args[0], args[1]]
            else:
                rep[flag] = values
        out.append(rep)
    return out


def corner_points(grids):
    """Points that put each flag at each of its representative values, the others at their
    first: every value train.py would refuse shows up among them, without the whole product."""
    points = []
    for grid in representative(grids):
        first = {flag: values[0] for flag, values in grid.items()}
        points.append(dict(first))
        for flag, values in grid.items():
            for value in values[1:]:
                points.append({**first, flag: value})
    return points


def round4(value):
    """4 significant digits: 0.000123456 -> 0.0001235."""
    return float(f"{value:.4g}")


def draw(space, rng):
    """One point of `space` (one grid object) drawn with numpy Generator `rng`."""
    point = {}
    for flag, values in space.items():
        if not is_distribution(values):
            point[flag] = values[rng.integers(len(values))]
            continue
        kind, args = next(iter(values.items()))
        if kind == "choice":
            point[flag] = args[rng.integers(len(args))]
        elif kind == "int":
            low, high, step = args[0], args[1], args[2] if len(args) == 3 else 1
            point[flag] = int(low + step * rng.integers((high - low) // step + 1))
        elif kind == "log":
            point[flag] = round4(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
        else:
            point[flag] = round4(rng.uniform(args[0], args[1]))
    return point


def random_points(space, n, seed):
    """n points drawn from `space`: point i from a generator seeded by (seed, i), so the same
    command draws the same points, and --trials 20 after --trials 10 keeps the first 10."""
    return [draw(space, np.random.default_rng([seed, i])) for i in range(n)]


def suggest(trial, space):
    """One point of `space` from an Optuna trial (TPE's suggestion, or an enqueued point)."""
    point = {}
    for flag, values in space.items():
        kind, args = next(iter(values.items())) if is_distribution(values) else ("choice", values)
        if kind == "choice":
            point[flag] = trial.suggest_categorical(flag, args)
        elif kind == "int":
            point[flag] = trial.suggest_int(flag, args[0], args[1], step=args[2] if len(args) == 3 else 1)
        else:
            point[flag] = round4(trial.suggest_float(flag, args[0], args[1], log=kind == "log"))
    return point


def check_space(grids, search, path):
    """Distributions go with --search random or optuna, which take one grid object."""
    has = [flag for grid in grids for flag, values in grid.items() if is_distribution(values)]
    if search == "grid" and has:
        raise UserError(f"{path}: '{has[0]}' is a distribution; draw points from it with --search random "
                        f"--trials N (or --search optuna), or give it a list of values")
    if search != "grid" and len(grids) != 1:
        raise UserError(f"{path}: --search {search} takes one object {{flag: values or distribution}}, not a list")
