"""The grid of a sweep: which train.py flags each trial gets.

A grid file is a JSON object {flag: [values]} (their cartesian product) or a list of such
objects (the union of their products); flag names are train.py's without dashes. For
--search random / optuna a flag may hold a distribution instead (biosig.sweep.space). `true` is
the bare flag, `false`/`null` leave it out. Every point is checked against train.py's own
parser before any trial runs; a trial's id is readable and stable for the same parameters.
Any train.py flag can be a grid flag, data files included ({"x": ["s01_X.npy", "s02_X.npy"]}).
"""
import difflib
import hashlib
import json
import math
import os
import random
import re

from ..errors import UserError
from .flags import PER_TRIAL, absolute_point, is_path_flag, render
from .space import check_distribution

# Without --sample, a larger grid is refused (it is probably a mistake, and would be built in memory).
MAX_POINTS = 100_000


def load_grid(path):
    """Read a grid file -> list of sub-grids [{flag: [values, ...]}]; checks the JSON's shape."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise UserError(f"{path}: cannot read the grid file ({e.strerror})") from None
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    grids = raw if isinstance(raw, list) else [raw]
    if not grids:
        raise UserError(f"{path}: an empty list; a grid is an object {{flag: [values]}} or a list of them")
    for i, grid in enumerate(grids):
        where = f"{path}: grid {i}" if isinstance(raw, list) else path
        if not isinstance(grid, dict):
            raise UserError(f"{where}: expected an object {{flag: [values]}}, got {json.dumps(grid)[:60]}")
        for flag, values in list(grid.items()):
            if isinstance(values, dict):            # a distribution (--search random / optuna)
                kind, args = check_distribution(where, flag, values)
                grid[flag] = {kind: args}
                values = args if kind == "choice" else []
            elif not isinstance(values, list):
                raise UserError(f"{where}: '{flag}' must be a list of values or a distribution "
                                f"({{\"log\": [low, high]}}, ...), got {json.dumps(values)[:60]}")
            elif not values:
                raise UserError(f"{where}: '{flag}' has an empty list of values")
            for value in values:
                if not (value is None or isinstance(value, (bool, int, float, str))):
                    raise UserError(f"{where}: '{flag}': {json.dumps(value)[:60]} is not a number, string, "
                                    f"true, false or null")
                if isinstance(value, str) and not _is_argument(value):
                    raise UserError(f"{where}: '{flag}': {json.dumps(value)[:60]} cannot be a command-line "
                                    f"argument (a NUL or an unpaired surrogate character)")
    return grids


def _is_argument(text):
    """Whether a string can be one argv word (the trial's command would otherwise fail to start)."""
    try:
        return b"\0" not in os.fsencode(text)
    except UnicodeEncodeError:
        return False




def check_grid_flags(grids, options, path):
    """Every grid key must be a train.py flag that the sweep does not set itself, with values
    of the right kind (true/false only for a bare flag such as normalize)."""
    for grid in grids:
        for flag, values in grid.items():
            option = options.get("--" + flag)
            if flag.startswith("-"):
                raise UserError(f"{path}: write flag names without dashes ('{flag.lstrip('-')}', not '{flag}')")
            if option is None:
                names = [s[2:] for s in options if s.startswith("--")]
                close = difflib.get_close_matches(flag, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UserError(f"{path}: '{flag}' is not a train.py flag{hint}")
            if option.dest in PER_TRIAL or option.dest == "help":
                raise UserError(f"{path}: '{flag}' cannot be a grid flag; the sweep sets it for each trial")
            if option.dest == "seed":
                raise UserError(f"{path}: 'seed' cannot be a grid flag; repeat every point over seeds with --seeds")
            bare = option.nargs == 0
            for value in values:
                if bare and not (value is None or isinstance(value, bool)):
                    raise UserError(f"{path}: '{flag}' is a bare flag; its values are true or false, "
                                    f"not {json.dumps(value)}")
                if not bare and value is True:
                    raise UserError(f"{path}: '{flag}' takes a value (--{flag} VALUE); true means a bare flag")


def grid_size(grids):
    return sum(math.prod(len(values) for values in grid.values()) for grid in grids)


def point_at(grids, index):
    """The index-th point of the union of the grids' products, without building them."""
    for grid in grids:
        size = math.prod(len(values) for values in grid.values())
        if index < size:
            point = {}
            for flag, values in reversed(grid.items()):   # last flag varies fastest
                index, k = divmod(index, len(values))
                point[flag] = values[k]
            return dict(reversed(point.items()))
        index -= size
    raise IndexError(index)


def expand(grids, sample=None, sample_seed=0, path="grid", options=None):
    """The grid's points [{flag: value}], in grid order, duplicates removed; `sample` picks that
    many at random (reproducibly for a given sample_seed). With train.py's `options`, file
    values are made absolute first (absolute_point), so 'a/X.npy' and './a/X.npy' are one point."""
    total = grid_size(grids)
    if sample is not None and sample < total:
        indices = sorted(random.Random(sample_seed).sample(range(total), sample))
    elif total > MAX_POINTS:
        raise UserError(f"{path}: {total:,} points; draw some of them with --sample K")
    else:
        indices = range(total)
    points, seen = [], set()
    for index in indices:
        point = point_at(grids, index)
        if options is not None:
            point = absolute_point(point, options)
        key = json.dumps(point, sort_keys=True)
        if key not in seen:
            seen.add(key)
            points.append(point)
    return points


def shown(flag, value):
    """A value as a trial id shows it: a file by its name ('/data/s01/X.npy' -> 'X.npy')."""
    text = render(value)
    if is_path_flag(flag) and isinstance(value, str):
        return os.path.basename(os.path.normpath(text)) or text
    return text


def trial_id(point, seed=None, fold=None, test_fold=None):
    """Readable and stable: 'batch=64_lr=0.001_seed=0' (flags sorted; then test-fold=, fold= with
    --cv), with a short hash of the parameters appended when characters had to be replaced, a
    file path was shortened to its name ('x=s01_X.npy-1a2b3c4d': two X.npy in different folders
    stay two ids), or the name is long. The hash is of the parameters alone, so an id never
    depends on the other points."""
    parts = [f"{flag}={shown(flag, value)}" for flag, value in sorted(point.items())]
    shortened = any(shown(flag, value) != render(value) for flag, value in point.items())
    for name, value in (("test-fold", test_fold), ("fold", fold), ("seed", seed)):
        if value is not None:
            parts.append(f"{name}={value}")
    text = "_".join(parts) or "default"
    safe = re.sub(r"[^A-Za-z0-9._=+-]", "-", text)
    if safe != text or len(safe) > 80 or shortened:
        key = [point, seed] + ([fold, test_fold] if fold is not None or test_fold is not None else [])
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
        safe = f"{safe[:80]}-{digest}"
    return safe
