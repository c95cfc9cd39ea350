"""Windowing throughput and peak memory on a long recording: python -m biosig.windows over hours of
multichannel data, as a .npy array and (with --edf) as an EDF file read through MNE.

    python bench/bench_windows.py                      # 2 h of 64 channels at 256 Hz, 2 s windows every 1 s
    python bench/bench_windows.py --hours 1 --edf      # also write that recording as EDF and cut it via MNE

Each cut runs as its own process (its peak resident memory is its VmHWM); the
throughput is recording time per wall second and samples (channels x time) per second.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# the child's own peak (VmHWM): ru_maxrss of a child counts the parent's pages it forked with
# (Linux keeps the pre-exec high-water mark), and this parent holds the whole recording
PEAK = ("import runpy, sys\nsys.argv = ['biosig.windows'] + sys.argv[1:]\ntry:\n"
        "    runpy.run_module('biosig.windows', run_name='__main__')\nfinally:\n"
        "    print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], file=sys.stderr)")


def cut(args, out):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK, *args, "--out", out], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    return wall, int(proc.stderr.split()[-1]) / 1024, proc.stdout.strip()          # VmHWM is in kB


def main():
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--fs", type=float, default=256.0)
    p.add_argument("--edf", action="store_true", help="also through MNE from an EDF file")
    p.add_argument("--dir", help="where to write the recording (default: a temporary directory)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        n = int(a.hours * 3600 * a.fs)
        rec = np.lib.format.open_memmap(os.path.join(tmp, "rec.npy"), mode="w+", dtype=np.float32,
                                        shape=(a.channels, n))
        rng = np.random.default_rng(0)
        for s in range(0, n, 1 << 20):
            rec[:, s:s + (1 << 20)] = rng.standard_normal((a.channels, min(1 << 20, n - s)), dtype=np.float32)
        rec.flush()
        size = rec.nbytes / 2 ** 20
        del rec
        rows = []
        wall, peak, line = cut(["--recording", os.path.join(tmp, "rec.npy"), "--fs", str(a.fs), "--length", "2",
                                "--stride", "1"], os.path.join(tmp, "w_npy"))
        rows.append((".npy (memory-mapped)", wall, peak, line))
        if a.edf:
            import mne
            mne.set_log_level("ERROR")
            data = np.load(os.path.join(tmp, "rec.npy"), mmap_mode="r")
            raw = mne.io.RawArray(np.asarray(data, dtype=np.float64) * 1e-5,
                                  mne.create_info([f"EEG{i:03d}" for i in range(a.channels)], a.fs, "eeg"))
            del data
            mne.export.export_raw(os.path.join(tmp, "rec.edf"), raw)
            del raw
            wall, peak, line = cut(["--recording", os.path.join(tmp, "rec.edf"), "--length", "2", "--stride", "1"],
                                   os.path.join(tmp, "w_edf"))
            rows.append(("EDF through MNE", wall, peak, line))
        print(f"recording: {a.hours:g} h x {a.channels} channels x {a.fs:g} Hz = {n * a.channels / 1e6:.0f} M "
              f"samples ({size:.0f} MiB as float32); windows of 2 s every 1 s")
        print("| source | wall s | recording hours per wall second | M samples/s | peak RSS MiB |")
        print("|---|---|---|---|---|")
        for name, wall, peak, line in rows:
            print(f"| {name} | {wall:.1f} | {a.hours / wall:.2f} | {n * a.channels / wall / 1e6:.0f} | {peak:.0f} |")
        for name, _, _, line in rows:
            print(f"{name}: {line}")


if __name__ == "__main__":
    main()
