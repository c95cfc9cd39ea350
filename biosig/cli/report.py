"""biosig-report (python -m biosig.report): report.png and report.html for run directories or
sweeps' --out. The work: biosig/report/run.py (a run), biosig/report/sweep.py (a sweep).
"""
import os
import sys

from biosig.errors import ArgumentParser, UserError, needs, prog
from biosig.report import run


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.report"),
                       description="Write report.png and a self-contained report.html for a run directory "
                       "(learning curves, confusion matrix, per-class F1, ...) or a sweep's --out (the objective "
                       "against each swept flag, the ranked points). Needs matplotlib.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories (runs/<run>) or sweep --out directories")
    from biosig.threads import add_threads_flag
    add_threads_flag(p)
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    from biosig.threads import apply as apply_threads
    threads = apply_threads(args.threads, import_torch=False)
    for d in args.dirs:
        if not os.path.isdir(d):
            raise UserError(f"{d}: not a directory (a run directory or a sweep's --out)" if os.path.exists(d)
                            else f"{d}: no such directory")
    if run.matplotlib_missing():
        raise needs("the report", "matplotlib")
    for d in args.dirs:
        for path in run.write_report(d):
            print(path)
    # the summary on stderr, once all is written (a refused directory stays one line): stdout lists
    # the files written, one a line, for a script to read
    print(f"biosig.report: {len(args.dirs)} director{'y' if len(args.dirs) == 1 else 'ies'} | {threads}",
          file=sys.stderr)


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
