"""Benchmark: real-time decoding, incremental (biosig.streaming) against re-running forward_seq
over the window for every new frame (the EEG2Arm guide's way), on CPU.

    python bench/bench_streaming.py              # about 2 minutes on 2 CPU cores
    python bench/bench_streaming.py --quick      # fewer frames

For the guide's EEG2Arm at its shape (C=32 electrodes, F=4 bands, frame-embed 256, 2 layers,
4 heads, time pooling 2) and for tcn (its defaults, same input), at a context of 64 and 256
input frames, one new input frame at a time:
  incremental  Streamer(model, context=W).push(frame): the model's stepper, two lanes (see
               biosig/streaming.py), 1 thread (as infer.py --stream runs it)
  window       model.forward_seq(last W frames) for every new frame, 1 thread and 2 threads
Prints per-frame latency (p50, p99, in ms) and input frames/s, and the speed-up (mean time per
frame of the window at its best thread count / incremental's). The two are measured in turn,
--block frames at a time, so both see the same machine load. Also the exactness: the largest
|difference| between the stepped logits and forward_seq over the same frames, for 1-frame,
odd and whole-recording chunks. Random weights (timing does not depend on them).
Not a test: nothing here asserts a speed.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from biosig.models import build_model  # noqa: E402
from biosig.deploy.streamer import Streamer  # noqa: E402

ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--quick", action="store_true", help="fewer frames")
ap.add_argument("--frames", type=int, default=None, help="timed frames per method (default 1200; 200 with --quick)")
ap.add_argument("--block", type=int, default=50, help="frames of one method before switching to the other")
args = ap.parse_args()
FRAMES = args.frames or (200 if args.quick else 1200)
C, F, K = 32, 4, 3
MODELS = {"eeg2arm": dict(cnn_time_pool=2), "tcn": {}}


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(name, context):
    torch.manual_seed(0)
    model = build_model(dict(name=name, n_elec=C, n_bands=F, n_outputs=K, **MODELS[name])).eval()
    x = torch.randn(C, F, context + FRAMES + args.block)
    streamer = Streamer(model, context=context)
    streamer.push(x[..., :context])
    at = {"inc": context, "win1": context, "win2": context}
    times = {k: [] for k in at}

    def incremental():
        streamer.push(x[..., at["inc"]:at["inc"] + 1])
        at["inc"] += 1

    def window(key):
        def run():
            t = at[key]
            model.forward_seq(x[None, ..., t + 1 - context:t + 1])
            at[key] += 1
        return run
    with torch.inference_mode():
        while len(times["inc"]) < FRAMES:
            for key, fn, threads in (("inc", incremental, 1), ("win1", window("win1"), 1), ("win2", window("win2"), 2)):
                torch.set_num_threads(threads)
                times[key] += timed(fn, args.block)
    return {k: np.array(v[:FRAMES]) * 1e3 for k, v in times.items()}


def exactness(name):
    """Largest |stepped - forward_seq| over chunkings, full history (context all)."""
    torch.manual_seed(1)
    model = build_model(dict(name=name, n_elec=C, n_bands=F, n_outputs=K, **MODELS[name])).eval()
    x = torch.randn(C, F, 301)
    with torch.no_grad():
        full = model.forward_seq(x[None])[0].numpy()
    worst = 0.0
    for sizes in ([1], [3, 7, 2, 5], [301]):
        streamer, parts, at, i = Streamer(model, context=None), [], 0, 0
        while at < x.shape[-1]:
            n = sizes[i % len(sizes)]
            parts.append(streamer.push(x[..., at:at + n])["logits"])
            at, i = at + n, i + 1
        worst = max(worst, float(np.abs(np.concatenate(parts) - full).max()))
    return worst


print(f"# bench_streaming: {platform.node()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
      f"{FRAMES} frames per method, C={C} F={F}\n")
print("| model | context | incremental p50 / p99 ms | frames/s | window 1 thread p50 / p99 ms | "
      "window 2 threads p50 / p99 ms | speed-up |")
print("|---|---|---|---|---|---|---|")
for name in MODELS:
    for context in (64, 256):
        t = measure(name, context)
        best = min(t["win1"].mean(), t["win2"].mean())
        cells = [f"{np.median(v):.3f} / {np.percentile(v, 99):.3f}" for v in (t["inc"], t["win1"], t["win2"])]
        print(f"| {name} | {context} | {cells[0]} | {1e3 / t['inc'].mean():.0f} | {cells[1]} | {cells[2]} | "
              f"{best / t['inc'].mean():.1f}x |", flush=True)
print()
for name in MODELS:
    print(f"exactness {name}: max |stepped - forward_seq| = {exactness(name):.2e} (chunks of 1, 3/7/2/5, all 301 frames)")
