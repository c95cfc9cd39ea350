"""biosig-windows (python -m biosig.windows): continuous recordings or MNE epochs -> windows
(N, C, 1, T) with labels and groups, for train.py; several signals at their own rates (named
recordings, --modality) into one windows file each. The work: biosig/signals/windows.py, modalities.py.
"""
from biosig.errors import ArgumentParser, positive_float, prog, stop_on_sigterm
from biosig.signals import modalities


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.windows"),
                       description="Cut continuous recordings (.npy (C, T_total), or EDF/BDF/BrainVision/FIF/... "
                       "through MNE) into windows X (N, C, 1, T) with labels and groups, for train.py.")
    p.add_argument("--recording", nargs="+", metavar="PATH", help="recordings: .npy (C, T_total) with --fs, or files "
                   "MNE reads; each is a group. NAME=PATH: modality NAME's, the k-th of each name session k")
    p.add_argument("--modality", nargs="+", action="extend", metavar="NAME=CH,CH", help="channels of each recording "
                   "that are modality NAME (its own NAME.npy)")
    p.add_argument("--resample", nargs="+", action="extend", metavar="NAME=HZ", help="bring modality NAME to this "
                   "rate (scipy's resample_poly)")
    p.add_argument("--epochs", metavar="EPO.FIF", help="instead: MNE epochs (-epo.fif) to X/y as they are")
    p.add_argument("--out", required=True, help="directory to write X.npy, y.npy, groups.npy, ... (must be new or empty, "
                   "or --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out's windows (a directory this tool wrote); "
                   "the new ones are written beside it and swapped in once complete")
    p.add_argument("--fs", nargs="+", action="extend", metavar="HZ", help="sampling rate in Hz (.npy recordings; "
                   "checked for others); modalities: NAME=HZ each (or NAME=HZ,NAME=HZ)")
    p.add_argument("--channel-names", nargs="+", action="extend", metavar="A,B", help="names of a .npy recording's "
                   "channels, comma-separated; modalities: NAME=A,B each")
    p.add_argument("--channels", nargs="+", action="extend", metavar="A,B", help="use these channels, in this order "
                   "(comma-separated names); modalities: NAME=A,B each")
    p.add_argument("--length", type=positive_float, help="window length in seconds")
    p.add_argument("--stride", type=positive_float, help="seconds between window starts (default: --length)")
    p.add_argument("--labels", nargs="+", metavar="NPY", help="per-sample integer labels (T_total,), one per recording")
    p.add_argument("--events", nargs="+", metavar="CSV", help="events onset,duration,label (seconds), one per recording")
    p.add_argument("--classes", help="event names that are classes, in class order: comma-separated, or the "
                   "training windows' classes.json (for a new recording, so that its labels mean the same); default: "
                   "every name, sorted. Windows of other events are left out")
    p.add_argument("--label-rule", choices=["majority", "center"], default="majority",
                   help="a window's label: its samples' most common one, or its center sample's")
    p.add_argument("--units", nargs="+", action="extend", help=".npy recordings: the samples' units, recorded in "
                   "signal.json (MNE files: V); modalities: NAME=UNITS each")
    from biosig.threads import add_threads_flag
    add_threads_flag(p)
    return p


def main(argv=None):
    stop_on_sigterm()                                  # kill, scancel: cleaned up as Ctrl-C is
    args = get_args_parser().parse_args(argv)
    from biosig.threads import apply as apply_threads
    threads = apply_threads(args.threads, import_torch=False)
    print(f"{modalities.run(args)} | {threads}")


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
