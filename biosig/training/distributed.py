"""DistributedDataParallel plumbing in one place: who am I, and the few collectives we use.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op for
a single process. nccl on CUDA, gloo on CPU.
"""
import datetime
import os

import torch
import torch.distributed as dist


class Context:
    """Where this process stands: rank, world size, local rank. alone=True: a rank computing on
    its own inside a torchrun job (no collective), as --model auto's cross-validation does."""

    def __init__(self, rank=0, world=1, local_rank=0, alone=False):
        self.rank, self.world, self.local_rank, self.alone = rank, world, local_rank, alone

    @property
    def enabled(self):
        return not self.alone and (self.world > 1 or dist.is_initialized())

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
    # Before the group exists: torch.distributed.nn's functions default to group=group.WORLD, so
    # importing it later (DistributedDataParallel does) would pin the group past cleanup().
    # (`from ... import`, not `import torch.distributed.nn`: that would make torch a local name
    # of this function, unbound at torch.cuda.set_device above.)
    from torch.distributed import nn  # noqa: F401
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    return Context(rank, world, local_rank)


def cleanup():
    """Destroy the group, joining gloo's worker threads while the interpreter is still whole.

    Only if nothing else holds the group (the DDP model must be gone): a worker that outlives
    cleanup() and drops the last reference to a tensor during interpreter exit dies taking the
    GIL, and the rank aborts (`terminate called without an active exception`, exit -6) after
    a run that trained correctly."""
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


def broadcast_tensors(tensors, ctx, src=0):
    """Overwrite each tensor, in place, with rank src's (a result computed once)."""
    if not ctx.enabled:
        return
    for t in tensors:
        if t.is_floating_point():
            dist.broadcast(t.data, src)


def barrier(ctx):
    if ctx.enabled:
        dist.barrier()


class _SyncBatchNormFn(torch.autograd.Function):
    """Batch statistics over every rank: one all_reduce forward, one backward, per layer.

    x (N, C, *) -> (normalized x using the mean/var of all ranks' batches together,
    mean (C,), biased var (C,), count) — the last three for the running statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        x64 = x.double()
        stats = torch.cat([x64.sum(dims), (x64 * x64).sum(dims),
                           torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)])
        dist.all_reduce(stats)
        c = x.shape[1]
        count = stats[2 * c]
        mean = stats[:c] / count
        var = (stats[c:2 * c] / count - mean * mean).clamp(min=0)
        invstd = torch.rsqrt(var + eps).to(x.dtype)
        xhat = (x - mean.to(x.dtype).view(shape)) * invstd.view(shape)
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.count, ctx.dims, ctx.shape = count, dims, shape
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        ctx.mark_non_differentiable(mean, var)
        return xhat * weight.view(shape) + bias.view(shape), mean, var, count

    @staticmethod
    def backward(ctx, dy, _mean, _var, _count):
        xhat, weight, invstd = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        local = torch.cat([dy.sum(dims), (dy * xhat).sum(dims)])
        sums = local.double()
        dist.all_reduce(sums)                          # sum over every rank's batch
        c = xhat.shape[1]
        mean_dy = (sums[:c] / ctx.count).to(dy.dtype)
        mean_dy_xhat = (sums[c:] / ctx.count).to(dy.dtype)
        dx = (dy - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)) * (weight * invstd).view(shape)
        # weight/bias get this rank's share; DDP averages them like every other gradient
        return dx, local[c:], local[:c], None


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span every rank's batch, for the gloo/CPU case
    where torch.nn.SyncBatchNorm refuses to run. Same arithmetic as torch's SyncBatchNorm:
    per-channel sums all-reduced in forward (float64) and gradient sums in backward."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        weight = self.weight if self.affine else torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
        bias = self.bias if self.affine else torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
        out, mean, var, count = _SyncBatchNormFn.apply(x, weight, bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
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
