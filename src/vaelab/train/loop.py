"""The training engine: one plain loop, resumable to the step, that never loses finished work.

A run directory holds config.json (fully resolved), env.json, train.log, metrics.jsonl + .csv,
checkpoints/last.pt (every epoch, and on SIGINT/SIGTERM mid-epoch), checkpoints/best.pt (best
validation loss), and DONE (the final summary) once training completes.

Reading order: `train` → `_open_run` → `_resume_or_start` → per epoch `_train_epoch` (steps, logs,
the one finiteness check, stop requests), validation, `_end_epoch` (checkpoints) → DONE.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab import runtime
from vaelab.config import TrainConfig
from vaelab.data import TensorLoader, load_arrays
from vaelab.data.loader import Binarize
from vaelab.data.store import split_arrays, vaelab_home
from vaelab.errors import ConfigError, RunError, TrainingInterrupted, first_line
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.losses import LossParts, objective
from vaelab.models import AutoEncoder, build_model
from vaelab.runtime import stream_seed
from vaelab.train import checkpoint
from vaelab.train import ddp as distributed
from vaelab.train.checkpoint import TrainSummary, read_done, read_run_config
from vaelab.train.ddp import Rank
from vaelab.train.preflight import check_training
from vaelab.train.runlog import MetricsLog, read_metrics

# Fields that may change when a run is resumed; any other difference is refused.
RESUMABLE_OVERRIDES = ("epochs", "device", "threads", "log_every", "compile")

EpochCallback = Callable[[int, dict[str, float]], bool]
"""`on_epoch_end(epoch, record) -> stop`: called after each epoch's validation (epoch 1-based,
record holds `val/loss`, `val/recon`, `val/kl`, `epoch_time_s`, ...); True stops the run there,
resumable, without DONE (sweeps use it to prune)."""


@dataclass
class RunResult:
    run_dir: Path
    summary: TrainSummary


# --------------------------------------------------------------------------- schedules
def kl_weight(cfg: TrainConfig, step: int) -> float:
    """β, ramped linearly over the first `kl_warmup_steps` steps when warm-up is on."""
    ramp = min(1.0, step / cfg.kl_warmup_steps) if cfg.kl_warmup_steps > 0 else 1.0
    return cfg.beta * ramp if cfg.model == "vae" else 0.0


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of step `step` (0-based) of `total_steps`. `cosine`: linear warm-up to
    `lr` over `warmup_steps`, then half a cosine down to `lr·min_lr_ratio` at the last step (a
    short high-LR schedule annealed to ~0 beats the course's constant 1e-3 in epochs)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = max(1, total_steps - cfg.warmup_steps - 1)
    progress_ = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    floor = cfg.min_lr_ratio
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress_)))


# --------------------------------------------------------------------------- steps
def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    beta: float,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
) -> LossParts:
    """One optimisation step on batch x (B, C, H, W) of `model` (or its DDP wrapper, either
    compiled); returns the detached loss parts."""
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast:
        out = model(x)
    parts = objective(out, x, beta, cfg.likelihood, cfg.sigma2)
    optimizer.zero_grad(set_to_none=True)
    parts.total.backward()
    optimizer.step()
    return LossParts(parts.total.detach(), parts.recon.detach(), parts.kl.detach())


@torch.no_grad()
def validation_loss(model: AutoEncoder, loader: TensorLoader, cfg: TrainConfig) -> dict[str, float]:
    """Batch-averaged objective (β = cfg.beta, one posterior sample) on the validation split;
    the noise comes from a forked RNG, so validating never shifts the training stream. Leaves
    the model in eval mode (each epoch sets train mode again)."""
    model.eval()
    beta = cfg.beta if cfg.model == "vae" else 0.0
    sums = torch.zeros(3, dtype=torch.float64, device=loader.device)
    n = 0
    devices = [loader.device] if loader.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(stream_seed(cfg.seed, "val_noise"))
        for x, _ in loader:
            p = objective(model(x), x, beta, cfg.likelihood, cfg.sigma2)
            sums += torch.stack([p.total, p.recon, p.kl]).double() * len(x)
            n += len(x)
    total, recon, kl = (sums / n).tolist()
    return {"val/loss": total, "val/recon": recon, "val/kl": kl}


# --------------------------------------------------------------------------- run directory
def _check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> TrainSummary | None:
    """Apply the refusal rules; return the summary of a finished (DONE) run being extended."""
    saved_path, done = run_dir / "config.json", run_dir / "DONE"
    if not saved_path.exists():
        if resume:
            raise RunError(
                f"nothing to resume in {run_dir} (no config.json); drop --resume to "
                "start a new run there"
            )
        return None
    if not resume:
        state = "a finished run (DONE)" if done.exists() else "an unfinished run"
        raise RunError(
            f"{run_dir} already holds {state}; pass --resume to continue it (with "
            "more --epochs to extend it) or choose another --out"
        )
    saved = read_run_config(run_dir)
    diffs = [
        f
        for f, v in cfg.to_dict().items()
        if v != getattr(saved, f) and f not in RESUMABLE_OVERRIDES
    ]
    if diffs:
        raise ConfigError(
            f"--resume with a different config ({', '.join(diffs)}) than {saved_path}; only "
            f"{', '.join(RESUMABLE_OVERRIDES)} may change"
        )
    if cfg.epochs != saved.epochs and cfg.lr_schedule != "constant":
        raise ConfigError(
            f"--epochs cannot change on --resume of a '{cfg.lr_schedule}' run: its learning-rate "
            "schedule is fixed by the epoch count; train a new run with the longer schedule"
        )
    return read_done(run_dir) if done.exists() else None


# The position and clocks of a run, saved in its checkpoints and restored under these names.
POSITION = ("epoch", "batch", "step", "elapsed_s", "images", "best_val_loss")


@dataclass
class _Run:
    """What one training run holds while it executes. A checkpoint restores the model, the
    optimizer and the `POSITION` fields; `epoch` and `batch` name the next batch to train."""

    cfg: TrainConfig
    run_dir: Path
    rank: Rank
    device: torch.device
    train_loader: TensorLoader
    val_loader: TensorLoader
    model: AutoEncoder
    optimizer: torch.optim.Optimizer
    net: torch.nn.Module
    """What the training step calls: the model, or DDP around it under torchrun."""
    logger: logging.Logger
    autocast: contextlib.AbstractContextManager
    epoch: int = 0
    batch: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    images: int = 0
    best_val_loss: float = math.inf
    metrics: MetricsLog | None = None
    """The metric log, written by rank 0 alone."""
    val: dict[str, float] | None = None
    """The last validation's metrics, once an epoch has ended in this process."""
    stop_signal: int | None = None
    """Set by SIGINT/SIGTERM: the loop finishes its step, saves and stops."""

    def on_signal(self, signum: int, frame: Any) -> None:
        """A second SIGINT aborts at once (the last checkpoint still stands)."""
        if self.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop_signal = signum

    def ckpt(self, name: str = "last") -> Path:
        return self.run_dir / "checkpoints" / f"{name}.pt"

    def save(self, name: str) -> None:
        """Write checkpoints/NAME.pt atomically (see vaelab.train.checkpoint)."""
        if not self.rank.is_main:  # one writer; every rank holds the same weights
            return
        weights = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        shape = list(self.train_loader.images.shape[1:])  # (C, H, W)
        position = {name: getattr(self, name) for name in POSITION}
        ckpt = {**weights, "config": self.cfg.to_dict(), "image_shape": shape, **position}
        checkpoint.save_checkpoint(self.ckpt(name), {**ckpt, "rng": checkpoint.rng_state()})

    def restore(self, ckpt: dict[str, Any], path: Path) -> None:
        """Put checkpoint `ckpt` (from `path`, checked by `check_training`) into this run."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            checkpoint.set_rng_state(ckpt["rng"])
            # vaelab 0.1 checkpoints lack the image count: estimate it from the steps taken.
            images = int(ckpt.get("images", ckpt["step"] * self.cfg.batch_size))
            for name in POSITION:
                setattr(self, name, images if name == "images" else ckpt[name])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise RunError(
                f"checkpoint {path} does not fit this run ({first_line(e, 160)}); delete the run "
                "directory to start again, or resume with the config it was written with"
            ) from None

    def summarise(self, val: dict[str, float], **extra: Any) -> TrainSummary:
        return TrainSummary(
            epochs=self.epoch,
            steps=self.step,
            train_time_s=self.elapsed_s,
            best_val_loss=self.best_val_loss,
            images_per_s_mean=self.images / max(self.elapsed_s, 1e-9),
            val=dict(val),
            **extra,
        )


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    tensorboard: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> RunResult:
    """Train `cfg` into `out_dir` (see the module docstring); returns the DONE summary. Under
    torchrun every rank calls this; rank 0 alone locks and writes the run directory."""
    cfg.validate()
    # paths, device, run folder, data, memory: before work; `last` is the checkpoint to resume
    last = check_training(cfg, out_dir, resume)
    run_dir = Path(out_dir)
    rank = distributed.rank_from_env()
    distributed.check_batch_split(cfg.batch_size, rank.world_size)
    with distributed.process_group(rank, runtime.resolve_device(cfg.device)) as device:
        lock = file_lock(run_dir / ".lock", blocking=False)  # creates the run directory
        with lock if rank.is_main else contextlib.nullcontext():
            done = _check_run_dir(cfg, run_dir, resume)
            distributed.barrier(rank)  # every rank has read the directory before rank 0 writes
            if done is not None and done.epochs >= cfg.epochs:
                return RunResult(run_dir, done)  # already finished: nothing to do
            run = _open_run(cfg, run_dir, rank, device)
            _resume_or_start(run, resume, last)
            try:
                result = _loop(run, tensorboard, on_epoch_end)
            finally:
                runtime.close_logger(run.logger)
            # Every rank leaves together: gloo's teardown hung (rarely, seen in 2 of ~8 test runs)
            # when one rank destroyed the group while rank 0 was still writing DONE.
            distributed.barrier(rank)
            return result


def _loop(run: _Run, tensorboard: bool, on_epoch_end: EpochCallback | None) -> RunResult:
    """Train the remaining epochs, then write DONE with the final summary."""
    cfg = run.cfg
    if run.rank.is_main:
        run.metrics = MetricsLog(run.run_dir, tensorboard=tensorboard)
    try:
        with runtime.signal_handlers((signal.SIGINT, signal.SIGTERM), run.on_signal):
            while run.epoch < cfg.epochs:
                epoch_time, seen = _train_epoch(run)
                val = validation_loss(run.model, run.val_loader, cfg)
                record = _end_epoch(run, val, epoch_time, seen)
                if on_epoch_end is not None and on_epoch_end(run.epoch, record):
                    run.logger.info("stopped by the caller after epoch %d", run.epoch)
                    return RunResult(run.run_dir, run.summarise(val, stopped_at_epoch=run.epoch))
    finally:
        if run.metrics:
            with contextlib.suppress(OSError):  # a full disk fails here too: keep the first error
                run.metrics.close()
    final = run.val
    if final is None:  # resumed after the last epoch's checkpoint, before DONE was written
        records = [r for r in read_metrics(run.run_dir / "metrics.jsonl") if "val/loss" in r]
        final = {k: v for k, v in records[-1].items() if k.startswith("val/")} if records else {}
    where = {"run_dir": str(run.run_dir), "device": str(run.device)}
    summary = run.summarise(final, model=cfg.model, beta=cfg.beta, **where)
    if run.rank.is_main:
        atomic_write_json(run.run_dir / "DONE", summary.to_dict())
    run.logger.info("done %s", json.dumps(summary.to_dict()))
    return RunResult(run.run_dir, summary)


def _open_run(cfg: TrainConfig, run_dir: Path, rank: Rank, device: torch.device) -> _Run:
    """Load the data, build model and optimizer. The order of random draws (seed, data, model
    init) is fixed so a seed gives the same run."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    logger = (
        runtime.file_logger(f"vaelab.run.{run_dir.resolve()}", run_dir / "train.log")
        if rank.is_main
        else logging.getLogger(f"vaelab.run.rank{rank.rank}")
    )
    runtime.seed_everything(stream_seed(cfg.seed, "train_init"))
    train_loader, val_loader = _loaders(cfg, rank, device)
    _, c, h, w = train_loader.images.shape  # (N, C, H, W)
    model = build_model(cfg, (c, h, w)).to(device)
    if cfg.channels_last:  # before the optimizer, whose moments then share the layout
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model, net = distributed.parallel(model, rank, device)
    betas = (cfg.adam_beta1, cfg.adam_beta2)
    fused = True if cfg.fused_adam else None  # None: torch's default (foreach)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=betas, fused=fused)
    net = _compiled(net) if cfg.compile else net
    loaders, autocast = (train_loader, val_loader), _autocast(cfg, device)
    return _Run(cfg, run_dir, rank, device, *loaders, model, optimizer, net, logger, autocast)


def _loaders(cfg: TrainConfig, rank: Rank, device: torch.device) -> tuple[TensorLoader, ...]:
    """(train, val) loaders: the splits of the verified dataset, cut to the run's limits."""
    arrays = load_arrays(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.color)
    x_train, y_train = (a[: cfg.limit_train] for a in split_arrays(arrays, "train"))
    x_val, y_val = (a[: cfg.limit_val] for a in split_arrays(arrays, "val"))
    train_loader = TensorLoader(
        x_train,
        y_train,
        cfg.batch_size // rank.world_size,
        seed=stream_seed(cfg.seed, "train_order"),
        binarize=cfg.binarize,
        # BatchNorm cannot train on one image: a final batch of one waits for the next epoch
        min_last_batch=2 if cfg.norm else 1,
        device=device,
        rank=rank.rank,  # each rank takes its slice of every global batch
        world_size=rank.world_size,
    )
    val_seed = stream_seed(cfg.seed, "val_binarize")
    binarize: Binarize = "static" if cfg.binarize != "none" else "none"
    val_loader = TensorLoader(
        x_val, y_val, 1000, shuffle=False, seed=val_seed, binarize=binarize, device=device
    )
    return train_loader, val_loader


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if cfg.precision != "bf16":
        return contextlib.nullcontext()
    if device.type == "cpu":
        print(
            "vaelab: warning: bf16 autocast on a CPU trains slower than fp32 unless the CPU has "
            "native bf16 (measured 0.67-0.93x of fp32 on an AVX-512 machine; far slower on "
            "AVX2-only CPUs); prefer --precision fp32 here",
            file=sys.stderr,
        )
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    """`net` through torch.compile, its inductor cache under VAELAB_HOME/inductor so that later
    runs (the study's next β, a resumed run) load the kernels instead of compiling them again.

    Worth it only when the compile cost is repaid within the run: a run of S steps at t s/step
    eager and r× faster compiled saves S·t·(1 − 1/r); a cold compile of c s pays off when
    S > c / (t·(1 − 1/r)). Measured on a 2-core CPU (benchmarks/bench_step.py, VAE, batch 64):
    c = 37 s, t = 35 ms, r = 0.99: never repaid, so the default stays eager (a warm cache cut
    another cold 27 s compile to 2 s). benchmarks/gpu_check.sh trains with and without it on a
    GPU, where t is far shorter and r must be larger still."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(vaelab_home() / "inductor"))
    return torch.compile(net)  # type: ignore[return-value]


def _resume_or_start(run: _Run, resume: bool, last: dict[str, Any] | None) -> None:
    """Restore checkpoint `last` when resuming; rank 0 then (re)writes the run's records."""
    if last is not None:
        run.restore(last, run.ckpt())
        at = (run.epoch, run.batch, run.step)
        run.logger.info("resumed from %s at epoch %d batch %d (step %d)", run.ckpt(), *at)
    if not run.rank.is_main:
        return
    if resume:  # drop the records of lost work (all of them without a checkpoint: step 0)
        MetricsLog.truncate_after(run.run_dir, run.step)
    with contextlib.suppress(FileNotFoundError):
        (run.run_dir / "DONE").unlink()  # extending a finished run: it is unfinished again
    atomic_write_json(run.run_dir / "config.json", run.cfg.to_dict())
    env = {**runtime.environment(run.device), "resumed_at_step": run.step}
    atomic_write_json(run.run_dir / "env.json", env)
    run.logger.info("config %s", json.dumps(run.cfg.to_dict()))


# --------------------------------------------------------------------------- the loop
def _train_epoch(run: _Run) -> tuple[float, int]:
    """Train from (run.epoch, run.batch) to the epoch's end; returns (seconds, images).
    The one finiteness check looks at the running sum of the `log_every`-step window: every step
    on CPU (cheap), every `log_every` steps on GPUs (a sync per step would stall them)."""
    cfg, loader = run.cfg, run.train_loader
    check_every = 1 if run.device.type == "cpu" else cfg.log_every
    loader.set_epoch(run.epoch)
    run.model.train()
    t_epoch, seen, first, stopped = time.perf_counter(), 0, run.batch, False
    window = _Window(torch.zeros(3, dtype=torch.float64, device=run.device), run.step, t_epoch)
    desc, quiet = f"epoch {run.epoch + 1}", None if run.rank.is_main else True
    bar = runtime.progress(enumerate(loader), total=len(loader), desc=desc, disable=quiet)
    for batch, (x, _) in bar:
        if batch < first:
            continue  # replay the position after a mid-epoch resume
        if cfg.lr_schedule != "constant":
            for group in run.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, run.step, cfg.epochs * len(loader))
        beta = kl_weight(cfg, run.step)
        parts = train_step(run.net, run.optimizer, x, beta, cfg, run.autocast)
        run.step, run.batch = run.step + 1, batch + 1
        seen += len(x) * run.rank.world_size  # images of the global batch
        window.sums += torch.stack([parts.total, parts.recon, parts.kl]).double()
        if run.step % check_every == 0 and not torch.isfinite(window.sums).all().item():
            _raise_nonfinite(run, window.sums)
        if run.step % cfg.log_every == 0:
            window.log(run, beta, (batch + 1) / len(loader), bar)
        if stopped := distributed.any_rank(run.stop_signal is not None, run.rank, run.device):
            break
    epoch_time = time.perf_counter() - t_epoch
    run.elapsed_s += epoch_time
    run.images += seen
    if stopped:
        run.save("last")
        name = signal.Signals(run.stop_signal or signal.SIGINT).name  # SIGINT: a rank not reached
        run.logger.info("stopped by %s at epoch %d step %d", name, run.epoch + 1, run.step)
        raise TrainingInterrupted(
            f"stopped by {name} at epoch {run.epoch + 1}, step {run.step}; progress saved to "
            f"{run.ckpt()}; resume with: vaelab train --out {run.run_dir} --resume"
        )
    run.epoch, run.batch = run.epoch + 1, 0
    return epoch_time, seen


@dataclass
class _Window:
    """The training losses (total, recon, kl) summed since the last log line, and its start."""

    sums: torch.Tensor
    step: int
    start: float

    def log(self, run: _Run, beta: float, done: float, bar: Any) -> None:
        """Log the mean losses (`done`: the share of the epoch trained) and restart the window."""
        steps, now = run.step - self.step, time.perf_counter()
        loss, recon, kl = (self.sums / steps).tolist()
        rec = {
            "step": run.step,
            "epoch": run.epoch + done,
            "train/loss": loss,
            "train/recon": recon,
            "train/kl": kl,
            "train/beta": beta,
            "train/lr": run.optimizer.param_groups[0]["lr"],
            "images_per_s": steps * run.cfg.batch_size / max(now - self.start, 1e-9),
        }
        if run.metrics:
            run.metrics.log(rec)
        bar.set_postfix(loss=f"{loss:.2f}", kl=f"{kl:.2f}", img_s=f"{rec['images_per_s']:.0f}")
        self.sums.zero_()
        self.step, self.start = run.step, now


def _raise_nonfinite(run: _Run, acc: torch.Tensor) -> None:
    _, recon, kl = acc.tolist()
    term = "recon" if not math.isfinite(recon) else "kl" if not math.isfinite(kl) else "loss"
    last = run.ckpt()
    kept = (
        f"{last} from the last good epoch is intact"
        if last.exists()
        else "no checkpoint was written yet (it failed in the first epoch)"
    )
    raise RunError(
        f"non-finite train/{term} at step {run.step} (epoch {run.epoch + 1}); "
        f"{kept}; lower --lr, add --kl-warmup-steps or check the data"
    )


def _end_epoch(run: _Run, val: dict[str, float], epoch_time: float, seen: int) -> dict[str, Any]:
    """Log the epoch, refuse a non-finite validation, write best.pt and last.pt."""
    rec = {
        "step": run.step,
        "epoch": run.epoch,
        **val,
        "epoch_time_s": epoch_time,
        "images_per_s": seen / max(epoch_time, 1e-9),
    }
    if run.metrics:
        run.metrics.log(rec)
        run.metrics.sync()
    run.logger.info("epoch %d/%d %s", run.epoch, run.cfg.epochs, json.dumps(rec))
    if not math.isfinite(val["val/loss"]):
        raise RunError(
            f"non-finite val/loss after epoch {run.epoch}; {run.ckpt()} from the epoch "
            "before is intact; lower --lr or add --kl-warmup-steps"
        )
    if val["val/loss"] < run.best_val_loss:
        run.best_val_loss = val["val/loss"]
        run.save("best")
    run.save("last")
    run.val = val
    return rec
