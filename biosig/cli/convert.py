"""biosig-convert (python -m biosig.convert): windows between X.npy/y.npy and a parquet table.
The work: biosig/data/convert.py.
"""
from biosig.data import convert
from biosig.data.flags import add_source_flags
from biosig.errors import ArgumentParser, HelpFormatter, prog


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.convert"),
                       description="Convert windows between X.npy/y.npy and a parquet table.",
                       formatter_class=HelpFormatter)
    p.add_argument("--x", required=True, help="X.npy (N, C, F, T), or a .parquet file / directory of them")
    p.add_argument("--y", help="npy -> parquet: targets y.npy: (N,) class ids or regression targets, or (N, D) "
                   "rows (D targets, or one label per frame), written as a number or a list per row")
    p.add_argument("--groups", help="npy -> parquet: group ids g.npy (N,), e.g. subject")
    p.add_argument("--out", help="npy -> parquet: the .parquet file to write")
    p.add_argument("--layout", choices=["nested", "channels"], default="nested",
                   help="npy -> parquet: one column of (C, F, T) lists, or one column per channel")
    p.add_argument("--out-x", help="parquet -> npy: X.npy (N, C, F, T) float32 to write")
    p.add_argument("--out-y", help="parquet -> npy: targets y.npy to write, (N,) or (N, D) as the column holds them")
    p.add_argument("--out-groups", help="parquet -> npy: group ids g.npy (N,) to write")
    add_source_flags(p, group_col=False)   # npy -> parquet with --layout channels: --signal-cols names them
    p.add_argument("--group-col", help="column holding the group id (default 'group' when --groups/--out-groups)")
    from biosig.threads import add_threads_flag
    add_threads_flag(p)
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    from biosig.threads import apply as apply_threads
    threads = apply_threads(args.threads, import_torch=False)
    print(convert.convert(args) + f" | {threads}")


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
