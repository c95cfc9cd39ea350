"""DistributedDataParallel plumbing in one place: who am I, and the few collectives we use.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op for
a single process. nccl on CUDA, gloo on CPU.
"""
import datetime
import os

import torch
import torch.distributed as dist


class Context:
    def __init__(self, rank=0, world=1, local_rank=0):
        self.rank, self.world, self.local_rank = rank, world, local_rank

    @property
    def enabled(self):
        return self.world > 1 or dist.is_initialized()

    @property
    def is_main(self):
        return self.rank == 0


def init(device_type):
    """Join the process group if launched by torchrun; return a Context."""
    if "RANK" not in os.environ:
        return Context()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    # A rank that dies leaves the others in a collective; torchrun tears the group down, and
    # this timeout bounds the wait where no launcher does.
    timeout = datetime.timedelta(seconds=float(os.environ.get("BIOSIG_DIST_TIMEOUT", 600)))
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    return Context(rank, world, local_rank)


def cleanup():
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values, ctx, device):
    """Sum a list of floats over ranks (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if ctx.enabled:
        dist.all_reduce(t)
    return t.tolist()


def gather_rows(t, ctx):
    """Concatenate (n_r, ...) tensors from every rank in rank order; every rank gets all rows."""
    if not ctx.enabled:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world)]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = torch.zeros((max(sizes),) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(ctx.world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def broadcast_flag(flag, ctx, device):
    """Rank 0's boolean, on every rank."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


def barrier(ctx):
    if ctx.enabled:
        dist.barrier()


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span every rank's batch, for the gloo/CPU case
    where torch.nn.SyncBatchNorm refuses to run. Statistics are summed with a
    differentiable all_reduce (two passes: mean, then centred variance, for accuracy), so
    gradients flow across ranks as they do through torch's own SyncBatchNorm."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = all_reduce(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device))
        mean = all_reduce(x.sum(dims)) / count
        var = all_reduce(((x - mean.view(shape)) ** 2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1).clamp(min=1))
        out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module, device_type):
    """Every BatchNorm*d becomes a synchronized one: torch's on CUDA, ours elsewhere."""
    if device_type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new.load_state_dict(module.state_dict())
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device_type))
    return module
