"""The parquet column flags (--x-col, --signal-cols, --label-col, --group-col) that train.py,
infer.py and biosig.convert share. They name columns of the tables this folder reads
(parquet.py), so they live here, below everything that reads a table: the training options
(biosig/training/options.py) and the commands (biosig/cli/) import them from here, and infer.py
and biosig.convert need nothing of biosig.train. It adds flags to a parser it is given and
makes none itself.
"""


def add_source_flags(parser, group_col=True):
    """Add the parquet column flags to `parser` (or an argument group) -> the actions added, so
    that train.py's options table can record their kinds."""
    actions = [parser.add_argument("--x-col", default="x",
                                   help="parquet: column holding each window as (C, F, T) or (C, T) lists"),
               parser.add_argument("--signal-cols", help="parquet: comma-separated channel columns, each (T,) or "
                                   "(F, T) lists (instead of --x-col)"),
               parser.add_argument("--label-col", default="label", help="parquet: label column")]
    if group_col:
        actions.append(parser.add_argument("--group-col",
                                           help="parquet: group column (e.g. subject) for --split group"))
    return actions
