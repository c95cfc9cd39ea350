"""Where and how the math runs: device, mixed precision, seeding, and the bare model under
its DDP / torch.compile wrappers. Shared by training and inference (no training imports)."""
import contextlib
import os
import random

import numpy as np
import torch

from .errors import UserError


def resolve_device(name):
    """--device: auto (cuda, then mps, then cpu), or the one named, if this machine has it."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this PyTorch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: MPS is not available on this machine")
    return torch.device(name)


def resolve_amp(amp, device):
    """auto: fp16 (with GradScaler) on CUDA, off elsewhere. fp16 needs CUDA; bf16 runs anywhere."""
    if amp == "auto":
        return "fp16" if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise UserError(f"--amp fp16 needs a CUDA device (this run is on {device.type}); use --amp bf16 or off")
    return amp


def autocast(device_type, amp):
    """The one mixed-precision context: off, bf16 or fp16 (the GradScaler goes with fp16)."""
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def seed_everything(seed, deterministic):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def epoch_seed(seed, epoch, rank):
    """Each epoch reseeds torch from (seed, epoch, rank): a resumed run draws what it would have."""
    return (seed * 1_000_003 + epoch * 9_176 + rank * 7_919) % (2 ** 63)


def bare_model(model):
    """The nn.Module under DDP and torch.compile wrappers, whose state dict has plain keys."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
