"""train.py's flags as a sweep handles them: which options it takes, which hold paths (made
absolute), which the sweep sets per trial, and a copy of train.py's parser that raises."""
import copy
import json
import os

from ..training import options as train_options_table
from ..data.parquet import names_a_column
from ..errors import UserError, closest_flag, named_item

# Set by the sweep for each trial; the grid and the flags after -- must not give them.
PER_TRIAL = train_options_table.dests(train_options_table.TRIAL)
# train.py options holding file paths: made absolute, so a trial (and best.json's command)
# runs the same from any directory (--save is set per trial).
PATH_DESTS = tuple(d for d in train_options_table.dests(train_options_table.PATH) if d not in PER_TRIAL)


def absolute(dest, value):
    """A file option's value as an absolute path (NAME=PATH: the path); a label option (--y,
    --y-val, --y-test) that names a parquet column rather than a file stays as it is."""
    name, path = named_path(value)
    if dest.startswith("y") and names_a_column(path):
        return value
    return f"{name}={os.path.abspath(path)}" if name else os.path.abspath(path)


def named_path(value):
    """'ppg=data/ppg.npy' -> ('ppg', 'data/ppg.npy'); a plain path -> (None, path)."""
    return named_item(str, is_path=True)(value)[0]


def render(value):
    """A grid value as text: JSON's true/false/null, numbers and strings as written."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def is_path_flag(flag):
    """Whether a grid flag ('x', 'class-names', ...) takes a file path."""
    return flag.replace("-", "_") in PATH_DESTS


def train_options(train_parser):
    """{'--lr': argparse action, ...} for every option string of train.py's parser."""
    return {s: action for action in train_parser._actions for s in action.option_strings}


def flag_value(flag, value):
    """['--flag', 'value'], or ['--flag=value'] when the value starts with '-' (argparse would
    read it as an option)."""
    return [f"{flag}={value}"] if value.startswith("-") else [flag, value]


def check_train_flags(flags, options):
    """The flags after -- must be train.py options that the sweep does not set per trial."""
    for token in flags:
        if not token.startswith("-") or is_number(token):
            continue
        name = token.split("=", 1)[0]
        option = options.get(name)
        if option is None:
            raise UserError(f"train.py flags after --: train.py has no option {name}{closest_flag(name, options)}")
        if option.dest in PER_TRIAL:
            raise UserError(f"train.py flags after --: {name} is set for each trial by the sweep "
                            f"(OUT/trials/<id>/run, OUT/trials/<id>/best.pt)")
        if option.dest == "help":
            raise UserError(f"train.py flags after --: {name}; see python train.py --help")


def is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def absolute_paths(flags, options):
    """The flags with the values of path options (--x, --y, --groups, --class-names) made absolute."""
    out, i = [], 0
    while i < len(flags):
        name, eq, value = flags[i].partition("=")
        option = options.get(name)
        if option is not None and option.dest in PATH_DESTS:
            if eq:
                out.append(f"{name}={absolute(option.dest, value)}")
            elif i + 1 < len(flags):
                out += [name, absolute(option.dest, flags[i + 1])]
                i += 1
            else:
                out.append(flags[i])
        else:
            out.append(flags[i])
        i += 1
    return out


def check_paths_exist(flags, options):
    """Every file named by the flags after -- must exist before a trial starts: each trial would
    fail the same way. (A --y naming a parquet label column is no file; a grid value naming a
    missing file fails its own trial only.)"""
    for i, token in enumerate(flags):
        name, eq, value = token.partition("=")
        option = options.get(name)
        if option is None or option.dest not in PATH_DESTS or not (eq or i + 1 < len(flags)):
            continue
        value = named_path(value if eq else flags[i + 1])[1]
        if option.dest.startswith("y") and names_a_column(value):
            continue
        if not os.path.exists(value):
            raise UserError(f"train.py flags after --: {name} {value}: no such file or directory")


def absolute_point(point, options):
    """A grid point with its file values made absolute, as its trial's command gets them: the
    id and trials.csv then name the file itself (the same relative path run from another
    directory is another file)."""
    return {flag: absolute(options["--" + flag].dest, value) if is_path_flag(flag) and isinstance(value, str)
            else value for flag, value in point.items()}


def point_flags(point, options):
    """{flag: value} -> train.py argv: true -> --flag, false/null -> left out."""
    argv = []
    for flag, value in point.items():
        if value is True:
            argv.append(f"--{flag}")
        elif value is not None and value is not False:
            text = render(value)
            if options[f"--{flag}"].dest in PATH_DESTS:
                text = absolute(options[f"--{flag}"].dest, text)
            argv += flag_value(f"--{flag}", text)
    return argv


def strict_parser(train_parser, where):
    """A copy of train.py's parser whose errors raise UserError('<where>: ...') instead of exiting."""
    parser = copy.copy(train_parser)

    def error(message):
        raise UserError(f"{where}: {message}")

    parser.error = error
    return parser
