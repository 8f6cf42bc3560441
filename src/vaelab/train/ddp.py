"""Data-parallel training with torch.distributed, started by torchrun.

`torchrun --nproc_per_node N -m vaelab train …` (or, on one machine, `vaelab train --nproc N`:
see `vaelab.train.launch`) starts N processes; each reads its rank from the environment
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) and joins one process group
(gloo on CPU, NCCL on CUDA). Each rank trains on its slice of every global batch (the
loader's rank/world_size slicing), gradients are averaged by DistributedDataParallel and
BatchNorm statistics are taken over the global batch, so N processes at global batch B train
like one process at batch B. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from vaelab.errors import ConfigError

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Rank:
    """This process's place in the job: rank 0 of 1 when not started by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def rank_from_env() -> Rank:
    """The rank torchrun assigned (RANK/WORLD_SIZE/LOCAL_RANK), or the single-process default."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(
            "RANK/WORLD_SIZE/LOCAL_RANK must be integers (they are set by torchrun; unset them "
            "to train in one process)"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is outside WORLD_SIZE {world}; start with torchrun")
    return Rank(rank, world, local)


def check_batch_split(batch_size: int, world_size: int) -> None:
    """Each rank trains on an equal slice of every global batch: B must divide by the ranks."""
    if batch_size % world_size:
        raise ConfigError(
            f"invalid config field 'batch_size': {batch_size} is not divisible by the "
            f"{world_size} processes; the global batch is split evenly across ranks"
        )


def init(rank: Rank, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each local rank takes its own GPU. Returns the device."""
    if not rank.active:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", rank.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown(rank: Rank) -> None:
    if rank.active and dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics are those of the global batch across all ranks.

    torch's SyncBatchNorm runs only on GPUs; this one all-reduces per-channel (sum, sum of
    squares, count) with the differentiable all_reduce, so it also runs with gloo on CPUs.
    Outside distributed training it is exactly nn.BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        count = x.new_full((1,), x.numel() / c)
        local = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count])  # (2C + 1,)
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = total[c : 2 * c] / n - mean * mean  # biased, as BatchNorm normalises with
        running_mean, running_var = self.running_mean, self.running_var
        tracked = self.num_batches_tracked
        # The buffers are None only for track_running_stats=False, which has no stats to update
        # (as in nn.BatchNorm2d); vaelab's models always track them.
        if running_mean is not None and running_var is not None and tracked is not None:
            with torch.no_grad():
                tracked.add_(1)
                m = self.momentum if self.momentum is not None else 0.1
                running_mean.mul_(1 - m).add_(m * mean.detach())
                running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def global_batch_norm(module: M) -> M:
    """Swap every BatchNorm2d for GlobalBatchNorm2d in place (same parameters and buffers, so
    state dicts and checkpoints are unchanged)."""
    for child in module.modules():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = GlobalBatchNorm2d
    return module


def prepare(model: M, rank: Rank, device: torch.device) -> M:
    """BatchNorm over the global batch (before the optimizer sees the parameters): torch's
    SyncBatchNorm on GPUs, GlobalBatchNorm2d on CPUs. A no-op in one process."""
    if not rank.active:
        return model
    if device.type == "cuda":
        # swaps the layers below `model` in place and returns `model` itself (a model is never
        # a bare BatchNorm layer), so its type is kept
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return global_batch_norm(model)


def wrap(model: nn.Module, rank: Rank, device: torch.device) -> nn.Module:
    """The module to call in training: DDP averages gradients over ranks. Buffers are not
    broadcast: every rank computes the same global BatchNorm statistics."""
    if not rank.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def barrier(rank: Rank) -> None:
    if rank.active:
        dist.barrier()


def any_rank(flag: bool, rank: Rank, device: torch.device) -> bool:
    """True on every rank if `flag` is true on any (so all ranks stop at the same step)."""
    if not rank.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)  # NCCL reduces GPU tensors only
    dist.all_reduce(t)
    return bool(t.item() > 0)
