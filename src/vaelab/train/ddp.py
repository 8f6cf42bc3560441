"""Data-parallel training under torchrun, and `vaelab train --nproc N` that starts it.

Each rank joins one process group (gloo on CPU, NCCL on CUDA) and trains on its slice of every
global batch; DDP averages gradients and BatchNorm takes global-batch statistics, so N processes
at batch B train like one at batch B. Only rank 0 writes files. `--nproc N` runs torchrun's job
with its logs in RUN_DIR/ranks/<launch>/, one line as outcome, and Ctrl-C/SIGTERM/SIGHUP passed
once to every rank (the launcher has its own session), so all stop at one step and rank 0 saves.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, STDOUT, Popen
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from vaelab.config import TrainConfig, available_cores
from vaelab.errors import ConfigError, RunError, TrainingInterrupted
from vaelab.runtime import resolve_device, signal_handlers
from vaelab.train.preflight import check_processes, threads_per_process

M = TypeVar("M", bound=nn.Module)
ERROR_PREFIX = "vaelab: error: "
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


@contextlib.contextmanager
def process_group(rank: Rank, device: torch.device) -> Iterator[torch.device]:
    """The block as a member of the process group (a no-op in one process); on CUDA each local
    rank takes its own GPU. Yields the device to train on."""
    if rank.active and device.type == "cuda":
        device = torch.device("cuda", rank.local_rank)
        torch.cuda.set_device(device)
    if rank.active and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device
    finally:
        if rank.active and dist.is_initialized():
            # gloo's threads free each finished collective's tensors, which takes the GIL, and
            # the group's destructor joins those threads holding it: a rank that got here within
            # a few ms of its last collective (after Ctrl-C) deadlocked at exit until torchrun
            # killed it 30 s later. Sleeping hands them the GIL before the group can go.
            time.sleep(0.1)
            dist.destroy_process_group()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the global batch that also runs with gloo on CPUs (torch's SyncBatchNorm
    is GPU-only): per-channel (sum, sum of squares, count) through the differentiable all_reduce.
    Outside distributed training it is exactly nn.BatchNorm2d."""

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
        # None only with track_running_stats=False (no stats to update, as in nn.BatchNorm2d)
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
    """Swap every BatchNorm2d for GlobalBatchNorm2d in place (same state dict and checkpoints)."""
    for child in module.modules():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = GlobalBatchNorm2d
    return module


def parallel(model: M, rank: Rank, device: torch.device) -> tuple[M, nn.Module]:
    """(model, the module to call in training). Under torchrun: BatchNorm over the global batch
    (torch's SyncBatchNorm on GPUs, GlobalBatchNorm2d on CPUs), and DDP around the model to
    average gradients over ranks; buffers are not broadcast, as every rank computes the same
    global BatchNorm statistics. In one process: (model, model)."""
    if not rank.active:
        return model, model
    if device.type == "cuda":
        # swaps the layers in place and returns `model` itself (never a bare BatchNorm layer)
        model, ids = nn.SyncBatchNorm.convert_sync_batchnorm(model), [device.index]
    else:
        model, ids = global_batch_norm(model), None
    return model, nn.parallel.DistributedDataParallel(
        model, device_ids=ids, broadcast_buffers=False
    )


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


# --------------------------------------------------------------------------- vaelab train --nproc


def check_nproc(nproc: int, cfg: TrainConfig) -> None:
    """Refuse an N that cannot run here, before any process starts."""
    if "RANK" in os.environ or "WORLD_SIZE" in os.environ:
        raise ConfigError(
            "--nproc starts its own processes; leave it out under torchrun (RANK/WORLD_SIZE "
            "are set), or unset them"
        )
    if nproc < 1:
        raise ConfigError(f"--nproc must be an integer >= 1, got {nproc}")
    if nproc == 1:
        return
    check_batch_split(cfg.batch_size, nproc)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise ConfigError(
                f"--nproc {nproc} > the {gpus} visible GPUs; each process trains on a GPU of "
                f"its own: use 1..{gpus}"
            )
    elif device.type != "cpu":
        raise ConfigError(f"--nproc needs --device cpu or cuda (no process group on {device})")
    else:
        check_processes("--nproc", nproc, cfg.threads)


def launch(nproc: int, vaelab_argv: list[str], run_dir: Path, threads: int | None) -> None:
    """Run `vaelab *vaelab_argv` as `nproc` ranks; raises `TrainingInterrupted` or `RunError`."""
    (run_dir / "ranks").mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=run_dir / "ranks"))
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        f"--nproc_per_node={nproc}",
        f"--log-dir={log_dir}",
        "--redirects=3",  # stdout and stderr of every rank to its own files
        *("-m", "vaelab", *vaelab_argv),
    ]
    env = dict(os.environ)
    # torchrun would set 1 thread per rank; assigned, not defaulted: an inherited
    # OMP_NUM_THREADS must not oversubscribe the cores that check_processes counted
    env["OMP_NUM_THREADS"] = str(threads_per_process(nproc, threads) or available_cores())
    received: list[signal.Signals] = []  # the signals passed on to the launcher
    procs: list[Popen] = []

    def pass_on(signum: int) -> None:
        # SIGHUP (the terminal closed) becomes SIGTERM: the ranks save and stop
        with contextlib.suppress(ProcessLookupError):
            for proc in procs:
                proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    def forward(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum))
        pass_on(signum)

    with open(log_dir / "launcher.log", "wb") as log, signal_handlers(FORWARDED, forward):
        # its own session: the launcher gets no terminal signal but those passed on here
        procs.append(
            Popen(cmd, env=env, stdin=DEVNULL, stdout=log, stderr=STDOUT, start_new_session=True)
        )
        if received:  # a signal that came before the launcher existed
            pass_on(received[0])
        code = procs[0].wait()
    if code == 0:
        return
    errors = rank_errors(log_dir)
    if not received:
        raise _failed(errors, nproc, log_dir)
    msg = errors.get(0) or next(iter(errors.values()), "")
    if not msg:
        msg = f"stopped by {received[0].name} before training started (rank logs: {log_dir})"
    elif msg.endswith("--resume"):  # rank 0's hint names a one-process resume
        msg += f" --nproc {nproc}"
    raise TrainingInterrupted(msg)


def rank_errors(log_dir: Path) -> dict[int, str]:
    """Each rank's error: its last `vaelab: error:` line, else (under --debug) the last line
    of its traceback. Ranks that reported nothing are absent."""
    errors: dict[int, str] = {}
    for path in sorted(log_dir.glob("*/attempt_*/*/stderr.log")):
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        ours = [ln.removeprefix(ERROR_PREFIX) for ln in lines if ln.startswith(ERROR_PREFIX)]
        if ours or "Traceback (most recent call last):" in lines:
            errors[int(path.parent.name)] = (ours or lines)[-1]
    return errors


def _failed(errors: dict[int, str], nproc: int, log_dir: Path) -> RunError:
    """One line for the rank that failed first, with its own exit code where it has one."""
    launcher = (log_dir / "launcher.log").read_text(errors="replace")
    # the launcher's report names the first failure: the others are its consequences (it stops
    # the remaining ranks, or they lose their peer in a collective)
    root = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", launcher, re.S)
    rank = int(root[1]) if root else min(errors, default=None)
    if root and rank not in errors and int(root[2]) < 0:  # a negative code: killed by a signal
        name = signal.Signals(-int(root[2])).name
        return RunError(
            f"rank {rank} of {nproc} was killed by {name} (out of memory?); rank logs: {log_dir}"
        )
    if rank is None or rank not in errors:
        return RunError(
            f"the {nproc} training processes failed without an error message (a rank killed by "
            f"the system, e.g. out of memory?); see {log_dir / 'launcher.log'}"
        )
    err = RunError(f"rank {rank} of {nproc} failed: {errors[rank]} (rank logs: {log_dir})")
    if root and int(root[2]) in (1, 2, 3):  # vaelab's own exit codes (see vaelab.cli)
        err.exit_code = int(root[2])
    return err
