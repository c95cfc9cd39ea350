"""Benchmark: biosig's training step against the EEG2Arm guide's own model and loop; long
windows; inference.

    python bench/bench_train.py                  # about 10 minutes on 2 CPU cores (GPU section: with CUDA)
    python bench/bench_train.py --quick          # fewer steps and rounds, for a smoke run
    python bench/bench_train.py --root DIR       # the biosig of another checkout (before/after a change)

Prints markdown tables:
  1. training samples/s at the guide's defaults (frame-embed 256, 2 layers, 4 heads, drop 0.1,
     batch 64, AdamW lr 3e-4 wd 1e-4, clip 1.0), at 1 and 2 threads, median of --rounds runs
     taken in turn (one of each, then again):
       guide   the guide's model (GuideModel below, written from the guide's description) and its
               loop: a per-sample Dataset + DataLoader (num_workers 0: on 2 cores, worker processes
               only compete with the step), fp32, torch.set_float32_matmul_precision("medium")
               as the guide's script sets it;
       fp32 / bf16  train.py's path: biosig.loop.train_one_epoch over Windows (X a numpy array),
               EEG2Arm, train.py's optimizer, AMP off / bf16;
       bare    EEG2Arm on in-memory tensors through the shortest loop (index, forward, loss,
               backward, clip, step): the limit of any data path.
  2. long windows: seconds per training epoch over (200, 7, 1, 1152), the shape of
     SelfRegulationSCP2, for every model at its defaults (train.py's path, 2 threads).
  3. inference: the Predictor infer.py uses, over a memory-mapped X (batch 256), and the latency
     of one window at a time (p50 / p99) for the default recipe's two models and EEG2Arm.
Not a test: nothing here asserts a speed.
"""
import argparse
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--quick", action="store_true", help="fewer steps and rounds")
ap.add_argument("--rounds", type=int, default=None, help="alternated runs per measure (default 3; 1 with --quick)")
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
ap.add_argument("--sections", nargs="+", default=["train", "long", "infer", "gpu"],
                choices=["train", "long", "infer", "gpu"])
ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                help="the checkout whose biosig is measured (default: this one)")
ARGS = ap.parse_args() if __name__ == "__main__" else ap.parse_args([])
sys.path.insert(0, ARGS.root)

from biosig import normalize
from biosig.training import batches as biosig_data
from biosig.training import loop  # noqa: E402
from biosig.training.batches import Windows, epoch_batches  # noqa: E402
from biosig.training.distributed import Context  # noqa: E402
from biosig.deploy.predictor import Predictor  # noqa: E402
from biosig.models import MODELS, build_model  # noqa: E402
from biosig.tasks import Classification  # noqa: E402

BATCH, LR, WD = 64, 3e-4, 1e-4
GUIDE = {"frame_embed": 256, "n_layers": 2, "n_heads": 4, "drop": 0.1}


class GuideModel(nn.Module):
    """The EEG2Arm guide's model as its README describes it: per-electrode depthwise 3-D
    convolutions over (F, T) with ReLU and max-pooling (bands by 2, time by cnn_time_pool), an
    early 1x1x1 mix across electrodes, a lazily sized per-frame Linear to frame_embed, a causal
    post-norm Transformer, a two-layer head on the last frame. Written for this bench from that
    description. Like the guide's model it cannot take F=1 (pooling bands by 2 fails)."""

    def __init__(self, n_elec, n_bands, n_classes, cnn_time_pool=2, frame_embed=256, drop=0.1,
                 n_layers=2, n_heads=4, depth_mult=4, spatial=32):
        super().__init__()
        width = n_elec * depth_mult
        self.stem = nn.Sequential(
            nn.Conv3d(n_elec, width, (1, 3, 7), padding=(0, 1, 3), groups=n_elec), nn.ReLU(),
            nn.MaxPool3d((1, 2, cnn_time_pool)),
            nn.Conv3d(width, width, (1, 3, 5), padding=(0, 1, 2), groups=width), nn.ReLU(),
            nn.Conv3d(width, spatial, 1), nn.ReLU(), nn.Dropout(drop))
        self.frame = nn.LazyLinear(frame_embed)
        self.pos = nn.Parameter(torch.zeros(1, 4096, frame_embed))
        layer = nn.TransformerEncoderLayer(frame_embed, n_heads, 2 * frame_embed, drop, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(frame_embed, frame_embed), nn.ReLU(), nn.Dropout(drop),
                                  nn.Linear(frame_embed, n_classes))

    def forward(self, x):
        """x (B, C, F, T) -> last-frame logits (B, K)."""
        h = self.stem(x.unsqueeze(2))                    # (B, S, 1, F', T'): electrodes as channels
        b, s, _, f, t = h.shape
        h = self.frame(h.reshape(b, s * f, t).transpose(1, 2)) + self.pos[:, :t]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.head(self.transformer(h, mask=mask)[:, -1])


class PerSample(torch.utils.data.Dataset):
    """The guide's data path: one window per __getitem__, collated by the DataLoader."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.X[i], dtype=np.float32)), int(self.y[i])


def biosig_model(shape, k=4, name="eeg2arm"):
    """The model train.py builds for windows of `shape` (its option defaults; EEG2Arm at the
    guide's defaults)."""
    from biosig.training import build, options
    torch.manual_seed(0)
    argv = ["--x", "X.npy", "--y", "y.npy", "--model", name, "--drop", str(GUIDE["drop"])]
    if name == "eeg2arm":
        argv += ["--frame-embed", str(GUIDE["frame_embed"]), "--layers", str(GUIDE["n_layers"]),
                 "--heads", str(GUIDE["n_heads"])]
    return build_model(build.model_config(options.train_parser().parse_args(argv), shape, k))


def optimizer_for(model, device="cpu"):
    """train.py's optimizer (biosig.training.build.make_optimizer where the measured checkout has it)."""
    from biosig.training import build
    make = getattr(build, "make_optimizer", None)
    if make is None:
        return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    return make(model.parameters(), LR, WD, torch.device(device))


def guide_step_rate(X, y, steps):
    """The guide's model and loop. Samples/s, or None when its model cannot take X."""
    torch.manual_seed(0)
    torch.set_float32_matmul_precision("medium")
    try:
        model = GuideModel(X.shape[1], X.shape[2], 4, **GUIDE)
        model(torch.from_numpy(X[:2]))                   # materialise the lazy layer
    except RuntimeError:
        torch.set_float32_matmul_precision("highest")
        return None
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    loader = torch.utils.data.DataLoader(PerSample(X, y), batch_size=BATCH, shuffle=True, num_workers=0)
    model.train()
    seen, start = 0, None
    for i, (xb, yb) in enumerate(loader):
        if i == 2:                                       # two warm-up steps
            seen, start = 0, time.perf_counter()
        if i == steps + 2:
            break
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += len(yb)
    torch.set_float32_matmul_precision("highest")
    return seen / (time.perf_counter() - start)


def biosig_epoch(model, X, y, steps, amp="off", opt=None, epoch=1, device="cpu", batch=BATCH, scaler=None):
    """train.py's path over the first `steps` batches of an epoch: (samples/s, seconds)."""
    device = torch.device(device)
    opt = opt or optimizer_for(model, device)
    windows = Windows(X, y, np.arange(len(X)))
    if hasattr(biosig_data, "on_device"):              # train.py's rule: a data set that fits lives on the GPU
        windows = biosig_data.on_device(windows, device)
    batches, sizes = epoch_batches(len(X), batch, seed=0, epoch=epoch, shuffle=True)
    stats = loop.train_one_epoch(model, Classification(int(y.max()) + 1), windows, batches[:steps], sizes[:steps],
                                 opt, scaler, device=device, amp=amp,
                                 preprocess_spec=normalize.make_spec(), clip=1.0, accum=1, ctx=Context())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return stats["samples"] / stats["seconds"], stats["seconds"]


def biosig_step_rate(X, y, steps, amp):
    model = biosig_model(X.shape)
    opt = optimizer_for(model)
    biosig_epoch(model, X, y, 2, amp, opt, epoch=0)     # warm-up
    return biosig_epoch(model, X, y, steps, amp, opt)[0]


def bare_step_rate(X, y, steps):
    """EEG2Arm on in-memory tensors, the shortest loop: the limit of any data path."""
    model = biosig_model(X.shape)
    opt = optimizer_for(model)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    model.train()
    seen, start = 0, None
    for i in range(steps + 2):
        if i == 2:
            seen, start = 0, time.perf_counter()
        idx = order[i * BATCH:(i + 1) * BATCH]
        loss = nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += len(idx)
    return seen / (time.perf_counter() - start)


def train_section(shapes, steps, rounds):
    print("Training samples/s at the guide's defaults (frame-embed 256, 2 layers, 4 heads, batch 64), "
          f"median of {rounds} alternated runs of {steps} steps:\n")
    print("| (C, F, T) | threads | guide | biosig fp32 | biosig bf16 | bare (in-memory) | fp32 / guide | "
          "bf16 / guide | fp32 / bare |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for shape in shapes:
        X = rng.normal(size=(BATCH * (steps + 2), *shape)).astype(np.float32)
        y = rng.integers(0, 4, len(X))
        for threads in ARGS.threads:
            torch.set_num_threads(threads)
            runs = {"guide": [], "fp32": [], "bf16": [], "bare": []}
            for _ in range(rounds):
                runs["guide"].append(guide_step_rate(X, y, steps))
                runs["fp32"].append(biosig_step_rate(X, y, steps, "off"))
                runs["bf16"].append(biosig_step_rate(X, y, steps, "bf16"))
                runs["bare"].append(bare_step_rate(X, y, steps))
            med = {k: None if None in v else float(np.median(v)) for k, v in runs.items()}
            ratio = lambda a, b: f"{med[a] / med[b]:.2f}x" if med[a] and med[b] else "—"  # noqa: E731
            guide = f"{med['guide']:,.0f}" if med["guide"] else "crashes (F=1)"
            print(f"| {shape} | {threads} | {guide} | {med['fp32']:,.0f} | {med['bf16']:,.0f} | {med['bare']:,.0f} | "
                  f"{ratio('fp32', 'guide')} | {ratio('bf16', 'guide')} | {ratio('fp32', 'bare')} |", flush=True)


def long_section(threads):
    torch.set_num_threads(threads)
    shape = (200, 7, 1, 1152)
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape).astype(np.float32)
    y = rng.integers(0, 4, shape[0])
    print(f"\nOne training epoch over {shape} (SelfRegulationSCP2's shape), batch 64, {threads} threads, "
          "each model at its defaults (second epoch; the first is a warm-up):\n")
    print("| model | parameters | frames the model sees | seconds per epoch |")
    print("|---|---:|---|---:|")
    for name in MODELS:
        model = biosig_model(shape, name=name)
        if hasattr(model, "fit_data"):
            model.fit_data(torch.from_numpy(X), seed=0)
        opt = optimizer_for(model)
        biosig_epoch(model, X, y, math.ceil(len(X) / BATCH), opt=opt, epoch=0)
        seconds = biosig_epoch(model, X, y, math.ceil(len(X) / BATCH), opt=opt)[1]
        frames = (f"T' = {model.forward_seq(torch.from_numpy(X[:1])).shape[1]}"
                  if getattr(model, "per_frame", False) else "")
        n = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {n:,} | {frames} | {seconds:.2f} |", flush=True)


def infer_section(threads, n):
    import subprocess
    from biosig import checkpoint
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"\nInference ({threads} threads) over a memory-mapped X.npy: infer.py run as a user runs "
          "it (--out preds.npy; wall time, start-up included), the Predictor it uses in this process (batch 256), "
          "and one window at a time through the Predictor (the first 200 windows):\n")
    print("| model | X (N, C, F, T) | MiB | infer.py samples/s | Predictor samples/s | one window p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for name, shape in (("eeg2arm", (32, 4, 64)), ("eegnet", (32, 1, 256)), ("minirocket", (32, 1, 256))):
            count = n if name != "minirocket" else min(n, 2048)       # its transform is slow: fewer windows
            path = os.path.join(tmp, f"X_{name}.npy")
            X = np.lib.format.open_memmap(path, "w+", np.float32, (count, *shape))
            for s in range(0, count, 1024):
                X[s:s + 1024] = rng.normal(size=(min(1024, count - s), *shape))
            X.flush()
            del X
            X = np.load(path, mmap_mode="r")
            model = biosig_model(X.shape, name=name)
            if hasattr(model, "fit_data"):
                model.fit_data(torch.from_numpy(np.array(X[:256])), seed=0)
            model.eval()
            ckpt = checkpoint.model_payload(model, Classification(4), [1, *shape], normalize.make_spec(), 1, {})
            ckpt_path = os.path.join(tmp, f"{name}.pt")
            checkpoint.atomic_save(ckpt, ckpt_path)
            start = time.perf_counter()
            subprocess.run([sys.executable, os.path.join(ARGS.root, "infer.py"), "--ckpt", ckpt_path, "--x", path,
                            "--out", os.path.join(tmp, "preds.npy")], check=True, env=env, capture_output=True)
            end_to_end = count / (time.perf_counter() - start)
            pred = Predictor(checkpoint.load(ckpt_path))
            pred.predict(np.asarray(X[:256]))
            t = time.perf_counter()
            for s in range(0, count, 256):
                pred.predict(X[s:s + 256])
            rate = count / (time.perf_counter() - t)
            lat = []
            for i in range(200):
                t = time.perf_counter()
                pred.predict(X[i:i + 1])
                lat.append((time.perf_counter() - t) * 1000)
            p50, p99 = np.percentile(lat, [50, 99])
            print(f"| {name} | {(count, *shape)} | {count * math.prod(shape) * 4 / 2 ** 20:,.0f} | {end_to_end:,.0f} | "
                  f"{rate:,.0f} | {p50:.1f} | {p99:.1f} |", flush=True)


# the GPU section's device and compile backend; BENCH_GPU_DEVICE=cpu BENCH_GPU_BACKEND=aot_eager
# runs it on CPU, to check the section itself before spending GPU time on it
GPU = torch.device(os.environ.get("BENCH_GPU_DEVICE", "cuda"))
GPU_BACKEND = os.environ.get("BENCH_GPU_BACKEND", "inductor")


def sync():
    if GPU.type == "cuda":
        torch.cuda.synchronize()


def gpu_guide_rate(X, y, steps, batch):
    """The guide's model and loop on CUDA with its AMP (fp16 + GradScaler)."""
    dev = GPU
    torch.manual_seed(0)
    torch.set_float32_matmul_precision("medium")
    model = GuideModel(X.shape[1], X.shape[2], 4, **GUIDE).to(dev)
    model(torch.from_numpy(X[:2]).to(dev))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    scaler = torch.amp.GradScaler(dev.type)
    loader = torch.utils.data.DataLoader(PerSample(X, y), batch_size=batch, shuffle=True, num_workers=0)
    model.train()
    seen, start = 0, None
    for i, (xb, yb) in enumerate(loader):
        if i == 3:
            sync()
            seen, start = 0, time.perf_counter()
        if i == steps + 3:
            break
        xb, yb = xb.to(dev), yb.to(dev)
        with torch.autocast(dev.type, dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        seen += len(yb)
    sync()
    torch.set_float32_matmul_precision("highest")
    return seen / (time.perf_counter() - start)


def gpu_bare_rate(net, params, Xg, yg, steps, batch, amp):
    """The shortest loop on tensors already on the GPU."""
    opt = optimizer_for_params(params, GPU)
    order = torch.randperm(len(Xg), device=Xg.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    seen, start = 0, None
    for i in range(steps + 3):
        if i == 3:
            sync()
            seen, start = 0, time.perf_counter()
        idx = order[(i * batch) % len(Xg):][:batch]
        with torch.autocast(GPU.type, dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(net(Xg[idx]), yg[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seen += len(idx)
    sync()
    return seen / (time.perf_counter() - start)


def optimizer_for_params(params, device):
    from biosig.training import build
    return build.make_optimizer(params, LR, WD, torch.device(device))


def gpu_section(rounds):
    """CUDA: AMP modes, torch.compile (inductor) and batch size, train.py's path against the
    guide's loop and against a bare compiled step with the same model."""
    if GPU.type == "cuda" and not torch.cuda.is_available():
        print("\n(no CUDA device: the GPU section is skipped)")
        return
    name = torch.cuda.get_device_name() if GPU.type == "cuda" else f"{GPU} (a dry run of this section)"
    print(f"\nGPU: {name}, torch {torch.__version__}; EEG2Arm at the guide's defaults, "
          f"(C, F, T) = (32, 4, 64), samples/s, median of {rounds} alternated runs:\n")
    rng = np.random.default_rng(0)
    steps, shape = (40, (32, 4, 64)) if GPU.type == "cuda" else (2, (8, 4, 32))
    X = rng.normal(size=(BATCH * (steps + 3), *shape)).astype(np.float32)
    y = rng.integers(0, 4, len(X))
    dev = GPU

    def fresh(amp, compiled=False):
        model = biosig_model(X.shape).to(dev)
        net = torch.compile(model, backend=GPU_BACKEND) if compiled else model
        scaler = torch.amp.GradScaler(dev.type) if amp == "fp16" else None
        opt = optimizer_for(model, dev)
        biosig_epoch(net, X, y, 3, amp, opt, epoch=0, device=dev, scaler=scaler)        # warm-up (and compile)
        return model, net, opt, scaler

    def run_fresh(amp):
        _, net, opt, scaler = fresh(amp)
        return biosig_epoch(net, X, y, steps, amp, opt, device=dev, scaler=scaler)[0]

    compiled = {amp: fresh(amp, compiled=True) for amp in ("bf16", "fp16")}
    Xg, yg = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    runs = {}
    for _ in range(rounds):
        for name, measure in (
                ("guide (fp16 AMP, per-sample DataLoader)", lambda: gpu_guide_rate(X, y, steps, BATCH)),
                ("biosig fp32", lambda: run_fresh("off")),
                ("biosig bf16", lambda: run_fresh("bf16")),
                ("biosig fp16", lambda: run_fresh("fp16")),
                ("biosig bf16 --compile", lambda: biosig_epoch(compiled["bf16"][1], X, y, steps, "bf16",
                                                               compiled["bf16"][2], device=dev)[0]),
                ("bare bf16 compiled (tensors on the GPU)",
                 lambda: gpu_bare_rate(compiled["bf16"][1], list(compiled["bf16"][0].parameters()), Xg, yg, steps,
                                       BATCH, "bf16")),
                ("biosig fp16 --compile", lambda: biosig_epoch(compiled["fp16"][1], X, y, steps, "fp16",
                                                               compiled["fp16"][2], device=dev,
                                                               scaler=compiled["fp16"][3])[0])):
            runs.setdefault(name, []).append(measure())
    med = {k: float(np.median(v)) for k, v in runs.items()}
    guide = med["guide (fp16 AMP, per-sample DataLoader)"]
    print("| batch 64 | samples/s | / guide |")
    print("|---|---:|---:|")
    for name, value in med.items():
        print(f"| {name} | {value:,.0f} | {value / guide:.2f}x |")
    print(f"\ntrain.py's path compiled / bare compiled step (bf16): "
          f"{med['biosig bf16 --compile'] / med['bare bf16 compiled (tensors on the GPU)']:.2f}")

    print("\nBatch size (train.py's path, bf16, eager and --compile; 16,384 windows, held in GPU memory as train.py holds a set that fits):\n")
    print("| batch | bf16 samples/s | bf16 --compile samples/s |")
    print("|---:|---:|---:|")
    X = rng.normal(size=(16384 if dev.type == "cuda" else 256, *shape)).astype(np.float32)
    y = rng.integers(0, 4, len(X))
    for batch in (64, 256, 1024, 4096) if dev.type == "cuda" else (64,):
        n = max(3, min(40, len(X) // batch - 1))
        eager = biosig_model(X.shape).to(dev)
        opt = optimizer_for(eager, dev)
        biosig_epoch(eager, X, y, 2, "bf16", opt, epoch=0, device=dev, batch=batch)
        rate = biosig_epoch(eager, X, y, n, "bf16", opt, device=dev, batch=batch)[0]
        model = biosig_model(X.shape).to(dev)
        net, opt = torch.compile(model, backend=GPU_BACKEND), optimizer_for(model, dev)
        biosig_epoch(net, X, y, 2, "bf16", opt, epoch=0, device=dev, batch=batch)
        rate_c = biosig_epoch(net, X, y, n, "bf16", opt, device=dev, batch=batch)[0]
        print(f"| {batch} | {rate:,.0f} | {rate_c:,.0f} |", flush=True)


def main():
    rounds = ARGS.rounds or (1 if ARGS.quick else 3)
    steps = 4 if ARGS.quick else 10
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"python {platform.python_version()}; biosig from {ARGS.root}\n")
    if "train" in ARGS.sections:
        train_section([(32, 4, 64), (16, 8, 64), (8, 1, 256), (7, 1, 1152)], steps, rounds)
    if "long" in ARGS.sections:
        long_section(max(ARGS.threads))
    if "infer" in ARGS.sections:
        infer_section(max(ARGS.threads), 2048 if ARGS.quick else 16384)
    if "gpu" in ARGS.sections:
        gpu_section(rounds)


if __name__ == "__main__":
    main()
