"""biosig-bandpower (python -m biosig.bandpower): raw windows (N, C, 1, T) -> band-power frames
(N, C, F, T') for train.py. The work: biosig/signals/bandpower.py.
"""
from biosig.errors import ArgumentParser, positive_float, positive_int, prog, stop_on_sigterm
from biosig.signals.bandpower import BANDS
from biosig.signals.frames import write_frames


def get_args_parser():
    p = ArgumentParser(prog=prog("biosig.bandpower"),
                       description="Raw windows (N, C, 1, T) -> band-power frames (N, C, F, T') for train.py.")
    p.add_argument("--x", required=True, help="raw windows .npy, (N, C, 1, T) or (N, C, T)")
    p.add_argument("--fs", type=positive_float, required=True, help="sampling rate of --x in Hz")
    p.add_argument("--out", required=True, help="band-power frames .npy (N, C, F, T'), written atomically")
    p.add_argument("--bands", help="name:low-high,... in Hz, in F-axis order (default "
                   + ",".join(f"{k}:{lo:g}-{hi:g}" for k, (lo, hi) in BANDS.items()) + ")")
    p.add_argument("--frame", type=positive_float, help="frame length in seconds (default 0.5; 1 with --method welch, "
                   "whose half-frame segments must resolve delta's 1-4 Hz)")
    p.add_argument("--hop", type=positive_float, default=0.25, help="seconds between frame starts (default 0.25)")
    p.add_argument("--method", choices=["stft", "welch"], default="stft",
                   help="one Hann-tapered periodogram per frame (stft), or the mean of half-frame ones (welch)")
    p.add_argument("--log", action="store_true", help="log10 of the band power")
    p.add_argument("--batch", type=positive_int, default=256, help="windows computed at a time (memory)")
    from biosig.threads import add_threads_flag
    add_threads_flag(p)
    return p


def main(argv=None):
    stop_on_sigterm()                # kill, scancel: the partial output is removed as on Ctrl-C
    args = get_args_parser().parse_args(argv)
    from biosig.threads import apply as apply_threads
    threads = apply_threads(args.threads, import_torch=False)
    print(write_frames(args.x, args.fs, args.out, args.bands, args.frame, args.hop, args.method, args.log, args.batch)
          + f" | {threads}")


if __name__ == "__main__":
    from biosig.errors import run_cli
    run_cli(main)
