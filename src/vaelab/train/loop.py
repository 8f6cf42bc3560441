"""The training engine: one plain loop, resumable to the step, that never loses finished work.

`train(config, out_dir)` writes into the run directory:
  config.json (fully resolved), env.json, train.log, metrics.jsonl + metrics.csv,
  checkpoints/last.pt (every epoch, and on SIGINT/SIGTERM mid-epoch), checkpoints/best.pt (best
  validation loss), and DONE (the final summary) when training completes.

Reading order: `train` → `_open_run` (data, model, state, resume) → for each epoch `_train_epoch`
(steps, logging, the one finiteness check, stop requests) → `_validate` → `_end_epoch`
(checkpoints, summary, the caller's `on_epoch_end`) → `_finish` (DONE).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vaelab.config import TrainConfig
from vaelab.data import TensorLoader, load_arrays
from vaelab.data.store import split_arrays, vaelab_home
from vaelab.errors import ConfigError, RunError
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.losses import LossParts, objective
from vaelab.models import AutoEncoder, build_model
from vaelab.runtime import (
    close_logger,
    environment,
    file_logger,
    progress,
    resolve_device,
    seed_everything,
    stream_seed,
)
from vaelab.train import ddp as distributed
from vaelab.train.checkpoint import rng_state, save_checkpoint, set_rng_state
from vaelab.train.ddp import Rank
from vaelab.train.preflight import check_training
from vaelab.train.rundir import TrainSummary, read_done, read_run_config
from vaelab.train.runlog import MetricsLog, NullMetrics, read_metrics

# Fields that may change when a run is resumed; any other difference is refused.
RESUMABLE_OVERRIDES = ("epochs", "device", "threads", "log_every", "compile")

EpochCallback = Callable[[int, dict[str, float]], bool]
"""`on_epoch_end(epoch, record) -> stop`: called after each epoch's validation (epoch 1-based,
record holds `val/loss`, `val/recon`, `val/kl`, `epoch_time_s`, ...); True stops the run there,
resumable, without DONE (sweeps use it to prune)."""


class TrainingInterrupted(RunError):
    exit_code = 130


@dataclass
class RunResult:
    run_dir: Path
    summary: TrainSummary


# --------------------------------------------------------------------------- schedules
def kl_weight(cfg: TrainConfig, step: int) -> float:
    """β, ramped linearly over the first `kl_warmup_steps` steps when warm-up is on."""
    if cfg.model != "vae":
        return 0.0
    if cfg.kl_warmup_steps > 0:
        return cfg.beta * min(1.0, step / cfg.kl_warmup_steps)
    return cfg.beta


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimisation step `step` (0-based) of a `total_steps` run.

    `cosine`: linear warm-up to `lr` over `warmup_steps`, then half a cosine down to
    `lr·min_lr_ratio` at the last step. A short high-LR schedule that anneals to ~0 reaches a
    given reconstruction error in far fewer epochs than the course's constant 1e-3.
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = max(1, total_steps - cfg.warmup_steps - 1)
    progress_ = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    floor = cfg.min_lr_ratio
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress_)))


# --------------------------------------------------------------------------- state
@dataclass
class TrainState:
    """Everything a checkpoint restores: weights, optimizer, position and clocks.

    `epoch` and `batch` name the next batch to train (batch 0 of `epoch` after a whole epoch).
    """

    model: AutoEncoder
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    batch: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    images: int = 0
    best_val_loss: float = math.inf


# The position and clocks of a TrainState, saved and restored under these names.
POSITION = ("epoch", "batch", "step", "elapsed_s", "images", "best_val_loss")


def save_state(
    path: Path, state: TrainState, cfg: TrainConfig, image_shape: tuple[int, ...]
) -> None:
    """Write `state` atomically as a checkpoint dict (see vaelab.train.checkpoint)."""
    weights = {"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict()}
    run = {"config": cfg.to_dict(), "image_shape": list(image_shape)}
    position = {name: getattr(state, name) for name in POSITION}
    save_checkpoint(path, {**weights, **run, **position, "rng": rng_state()})


def restore_state(ckpt: dict[str, Any], path: Path, state: TrainState, cfg: TrainConfig) -> None:
    """Put checkpoint `ckpt` (read from `path` and checked against this run's config by
    `check_resumable`) into `state`: weights, optimizer, position and RNGs."""
    try:
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        # vaelab 0.1 checkpoints lack the image count: estimate it from the steps taken.
        images = int(ckpt.get("images", ckpt["step"] * cfg.batch_size))
        for name in POSITION:
            setattr(state, name, images if name == "images" else ckpt[name])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise RunError(
            f"checkpoint {path} does not fit this run ({first}); delete the run directory to "
            "start again, or resume with the config it was written with"
        ) from None


# --------------------------------------------------------------------------- steps
def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    beta: float,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
) -> LossParts:
    """One optimisation step on batch x (B, C, H, W); returns the detached loss parts.
    `model` is the AutoEncoder or, in distributed training, its DDP wrapper (either compiled)."""
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
def validation_loss(
    model: AutoEncoder, loader: TensorLoader, cfg: TrainConfig, seed: int
) -> dict[str, float]:
    """Batch-averaged objective (β = cfg.beta, one posterior sample) on the validation split.

    The posterior noise comes from a forked RNG, so validating never shifts the training stream.
    """
    was_training = model.training
    model.eval()
    beta = cfg.beta if cfg.model == "vae" else 0.0
    sums = torch.zeros(3, dtype=torch.float64, device=loader.device)
    n = 0
    devices = [loader.device] if loader.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x, _ in loader:
            p = objective(model(x), x, beta, cfg.likelihood, cfg.sigma2)
            sums += torch.stack([p.total, p.recon, p.kl]).double() * len(x)
            n += len(x)
    model.train(was_training)
    total, recon, kl = (sums / n).tolist()
    return {"val/loss": total, "val/recon": recon, "val/kl": kl}


# --------------------------------------------------------------------------- run directory
def _check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> bool:
    """Apply the refusal rules; return whether a finished (DONE) run is being extended."""
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        if resume:
            raise RunError(
                f"nothing to resume in {run_dir} (no config.json); drop --resume to "
                "start a new run there"
            )
        return False
    if not resume:
        state = "a finished run (DONE)" if (run_dir / "DONE").exists() else "an unfinished run"
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
    return (run_dir / "DONE").exists()


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, saves and stops. A second
    SIGINT aborts at once (the last checkpoint still stands)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


@dataclass
class _Run:
    """What one training run holds while it executes."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    train_loader: TensorLoader
    val_loader: TensorLoader
    image_shape: tuple[int, ...]
    state: TrainState
    logger: logging.Logger
    autocast: contextlib.AbstractContextManager
    rank: Rank
    net: torch.nn.Module
    """What the training step calls: the model, or DDP around it under torchrun."""
    metrics: MetricsLog | NullMetrics = field(default_factory=NullMetrics)
    summary: TrainSummary | None = None

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * len(self.train_loader)

    def save(self, name: str) -> None:
        if self.rank.is_main:  # one writer; every rank holds the same weights
            save_state(self.ckpt_dir / f"{name}.pt", self.state, self.cfg, self.image_shape)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    tensorboard: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> RunResult:
    """Train `cfg` into `out_dir` (see the module docstring); returns the DONE summary.

    Under torchrun every rank calls this; rank 0 alone locks and writes the run directory."""
    cfg.validate()
    # paths, device, run folder, data, memory: before work; `last` is the checkpoint to resume
    last = check_training(cfg, out_dir, resume)
    run_dir = Path(out_dir)
    rank = distributed.rank_from_env()
    distributed.check_batch_split(cfg.batch_size, rank.world_size)
    device = distributed.init(rank, resolve_device(cfg.device))
    try:
        if rank.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        lock = file_lock(run_dir / ".lock", blocking=False) if rank.is_main else None
        with lock or contextlib.nullcontext():
            extending = _check_run_dir(cfg, run_dir, resume)
            distributed.barrier(rank)  # every rank has read the directory before rank 0 writes
            if resume and extending:
                done = read_done(run_dir)
                if done.epochs >= cfg.epochs:
                    return RunResult(run_dir, done)  # already finished: nothing to do
            run = _open_run(cfg, run_dir, rank, device)
            _resume_or_start(run, resume, last)
            try:
                result = _loop(run, tensorboard, on_epoch_end)
            finally:
                close_logger(run.logger)
            # Every rank leaves together: gloo's teardown hung (rarely, seen in 2 of ~8 test runs)
            # when one rank destroyed the group while rank 0 was still writing DONE.
            distributed.barrier(rank)
            return result
    finally:
        distributed.shutdown(rank)


def _loop(run: _Run, tensorboard: bool, on_epoch_end: EpochCallback | None) -> RunResult:
    cfg, state = run.cfg, run.state
    if run.rank.is_main:
        run.metrics = MetricsLog(run.run_dir, tensorboard=tensorboard)
    try:
        with _StopFlag() as stop:
            while state.epoch < cfg.epochs:
                epoch_time, seen = _train_epoch(run, stop)
                val = _validate(run)
                record = _end_epoch(run, val, epoch_time, seen)
                if on_epoch_end is not None and on_epoch_end(state.epoch, record):
                    run.logger.info("stopped by the caller after epoch %d", state.epoch)
                    assert run.summary is not None  # _end_epoch set it
                    summary = dataclasses.replace(run.summary, stopped_at_epoch=state.epoch)
                    return RunResult(run.run_dir, summary)
    finally:
        with contextlib.suppress(OSError):  # a full disk fails here too: keep the first error
            run.metrics.close()
    return _finish(run)


def _open_run(cfg: TrainConfig, run_dir: Path, rank: Rank, device: torch.device) -> _Run:
    """Load the data, build model and optimizer: the state of a run that starts now.

    The order of random draws (seed, data, model init) is fixed so a seed gives the same run."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    logger = (
        file_logger(f"vaelab.run.{run_dir.resolve()}", run_dir / "train.log")
        if rank.is_main
        else logging.getLogger(f"vaelab.run.rank{rank.rank}")
    )
    seed_everything(stream_seed(cfg.seed, "train_init"))
    train_loader, val_loader = _loaders(cfg, rank, device)
    _, c, h, w = train_loader.images.shape  # (N, C, H, W)
    image_shape = (int(c), int(h), int(w))
    model = build_model(cfg, image_shape)
    model = distributed.prepare(model, rank, device).to(device)
    if cfg.channels_last:  # before the optimizer, whose moments then share the layout
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2)
    )
    net = distributed.wrap(model, rank, device)
    if cfg.compile:
        net = _compiled(net)
    return _Run(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        train_loader=train_loader,
        val_loader=val_loader,
        image_shape=image_shape,
        state=TrainState(model, optimizer),
        logger=logger,
        autocast=_autocast(cfg, device),
        rank=rank,
        net=net,
    )


def _loaders(cfg: TrainConfig, rank: Rank, device: torch.device) -> tuple[TensorLoader, ...]:
    """(train, val) loaders: the splits of the verified dataset, cut to the run's limits."""
    arrays = load_arrays(cfg.dataset, cfg.data_dir)
    x_train, y_train = (a[: cfg.limit_train] for a in split_arrays(arrays, "train"))
    x_val, y_val = (a[: cfg.limit_val] for a in split_arrays(arrays, "val"))
    if len(x_train) == 0 or len(x_val) == 0:
        raise RunError(
            f"dataset {cfg.dataset} has an empty {'train' if len(x_train) == 0 else 'val'} split; "
            "check --data-dir and --limit-train/--limit-val"
        )
    train_loader = TensorLoader(
        x_train,
        y_train,
        cfg.batch_size // rank.world_size,
        shuffle=True,
        seed=stream_seed(cfg.seed, "train_order"),
        binarize=cfg.binarize,
        # BatchNorm cannot train on one image: a final batch of one waits for the next epoch
        min_last_batch=2 if cfg.norm else 1,
        device=device,
        rank=rank.rank,  # each rank takes its slice of every global batch
        world_size=rank.world_size,
    )
    val_loader = TensorLoader(
        x_val,
        y_val,
        1000,
        shuffle=False,
        seed=stream_seed(cfg.seed, "val_binarize"),
        binarize="static" if cfg.binarize != "none" else "none",
        device=device,
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
    state, path = run.state, run.ckpt_dir / "last.pt"
    if last is not None:
        restore_state(last, path, state, run.cfg)
    if not run.rank.is_main:
        return
    if last is not None:
        MetricsLog.truncate_after(run.run_dir, state.step)
        run.logger.info(
            "resumed from %s at epoch %d batch %d (step %d)",
            path,
            state.epoch,
            state.batch,
            state.step,
        )
    elif resume:
        MetricsLog.truncate_after(run.run_dir, 0)  # crashed before the first checkpoint
    with contextlib.suppress(FileNotFoundError):
        (run.run_dir / "DONE").unlink()  # extending a finished run: it is unfinished again
    atomic_write_json(run.run_dir / "config.json", run.cfg.to_dict())
    env = {**environment(run.device), "resumed_at_step": state.step}
    atomic_write_json(run.run_dir / "env.json", env)
    run.logger.info("config %s", json.dumps(run.cfg.to_dict()))


# --------------------------------------------------------------------------- the loop
@dataclass
class _Window:
    """The training losses summed since the last log line (total, recon, kl), and its start."""

    sums: torch.Tensor
    steps: int = 0
    start: float = field(default_factory=time.perf_counter)


def _train_epoch(run: _Run, stop: _StopFlag) -> tuple[float, int]:
    """Train from (state.epoch, state.batch) to the end of the epoch; returns (seconds, images).

    Training metrics are averaged over `log_every` steps. The one finiteness check looks at that
    running sum: every step on CPU (cheap), every `log_every` steps on GPUs (a sync per step
    would stall them)."""
    cfg, state, loader = run.cfg, run.state, run.train_loader
    check_every = 1 if run.device.type == "cpu" else cfg.log_every
    loader.set_epoch(state.epoch)
    state.model.train()
    t_epoch, seen, first = time.perf_counter(), 0, state.batch
    window = _Window(torch.zeros(3, dtype=torch.float64, device=run.device))
    bar = progress(
        enumerate(loader),
        total=len(loader),
        desc=f"epoch {state.epoch + 1}",
        disable=None if run.rank.is_main else True,
    )
    for batch, (x, _) in bar:
        if batch < first:
            continue  # replay the position after a mid-epoch resume
        if cfg.lr_schedule != "constant":
            for group in state.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, state.step, run.total_steps)
        beta = kl_weight(cfg, state.step)
        parts = train_step(run.net, state.optimizer, x, beta, cfg, run.autocast)
        state.step, state.batch = state.step + 1, batch + 1
        seen += len(x) * run.rank.world_size  # images of the global batch
        window.sums += torch.stack([parts.total, parts.recon, parts.kl]).double()
        window.steps += 1
        if state.step % check_every == 0 and not torch.isfinite(window.sums).all().item():
            _raise_nonfinite(run, window.sums)
        if state.step % cfg.log_every == 0:
            _log_window(run, window, beta, (batch + 1) / len(loader), bar)
        if distributed.any_rank(stop.signal is not None, run.rank, run.device):
            signum = stop.signal or signal.SIGINT  # a rank the signal did not reach
            _save_and_stop(run, signum, time.perf_counter() - t_epoch, seen)
    epoch_time = time.perf_counter() - t_epoch
    state.elapsed_s += epoch_time
    state.images += seen
    state.epoch, state.batch = state.epoch + 1, 0
    return epoch_time, seen


def _log_window(run: _Run, window: _Window, beta: float, done: float, bar: Any) -> None:
    """Log the window's mean losses (`done`: the share of the epoch trained) and restart it."""
    state = run.state
    loss, recon, kl = (window.sums / window.steps).tolist()
    now = time.perf_counter()
    rec = {
        "step": state.step,
        "epoch": state.epoch + done,
        "train/loss": loss,
        "train/recon": recon,
        "train/kl": kl,
        "train/beta": beta,
        "train/lr": state.optimizer.param_groups[0]["lr"],
        "images_per_s": window.steps * run.cfg.batch_size / max(now - window.start, 1e-9),
    }
    run.metrics.log(rec)
    bar.set_postfix(loss=f"{loss:.2f}", kl=f"{kl:.2f}", img_s=f"{rec['images_per_s']:.0f}")
    window.sums.zero_()
    window.steps, window.start = 0, now


def _raise_nonfinite(run: _Run, acc: torch.Tensor) -> None:
    bad = [
        n
        for n, v in zip(("loss", "recon", "kl"), acc.tolist(), strict=True)
        if not math.isfinite(v)
    ]
    term = next((t for t in ("recon", "kl") if t in bad), "loss")
    last = run.ckpt_dir / "last.pt"
    kept = (
        f"{last} from the last good epoch is intact"
        if last.exists()
        else "no checkpoint was written yet (it failed in the first epoch)"
    )
    raise RunError(
        f"non-finite train/{term} at step {run.state.step} (epoch {run.state.epoch + 1}); "
        f"{kept}; lower --lr, add --kl-warmup-steps or check the data"
    )


def _save_and_stop(run: _Run, signum: int, epoch_s: float, seen: int) -> None:
    run.state.elapsed_s += epoch_s
    run.state.images += seen
    run.save("last")
    name = signal.Signals(signum).name
    run.logger.info("stopped by %s at epoch %d step %d", name, run.state.epoch + 1, run.state.step)
    raise TrainingInterrupted(
        f"stopped by {name} at epoch {run.state.epoch + 1}, step {run.state.step}; progress "
        f"saved to {run.ckpt_dir / 'last.pt'}; resume with: vaelab train "
        f"--out {run.run_dir} --resume"
    )


def _validate(run: _Run) -> dict[str, float]:
    seed = stream_seed(run.cfg.seed, "val_noise")
    return validation_loss(run.state.model, run.val_loader, run.cfg, seed=seed)


def _end_epoch(run: _Run, val: dict[str, float], epoch_time: float, seen: int) -> dict[str, Any]:
    """Log the epoch, refuse a non-finite validation, write best.pt and last.pt."""
    state = run.state
    rec = {
        "step": state.step,
        "epoch": state.epoch,
        **val,
        "epoch_time_s": epoch_time,
        "images_per_s": seen / max(epoch_time, 1e-9),
    }
    run.metrics.log(rec)
    run.metrics.sync()
    run.logger.info("epoch %d/%d %s", state.epoch, run.cfg.epochs, json.dumps(rec))
    if not math.isfinite(val["val/loss"]):
        raise RunError(
            f"non-finite val/loss after epoch {state.epoch}; {run.ckpt_dir / 'last.pt'} from the "
            "epoch before is intact; lower --lr or add --kl-warmup-steps"
        )
    if val["val/loss"] < state.best_val_loss:
        state.best_val_loss = val["val/loss"]
        run.save("best")
    run.save("last")
    run.summary = _summary(state, val)
    return rec


def _summary(state: TrainState, val: dict[str, float]) -> TrainSummary:
    return TrainSummary(
        epochs=state.epoch,
        steps=state.step,
        train_time_s=state.elapsed_s,
        best_val_loss=state.best_val_loss,
        images_per_s_mean=state.images / max(state.elapsed_s, 1e-9),
        val=dict(val),
    )


def _finish(run: _Run) -> RunResult:
    """Write DONE with the final summary."""
    cfg, state = run.cfg, run.state
    summary = run.summary
    if summary is None:  # resumed after the last epoch's checkpoint, before DONE was written
        val_records = [r for r in read_metrics(run.run_dir / "metrics.jsonl") if "val/loss" in r]
        last_val = val_records[-1] if val_records else {}
        summary = _summary(state, {k: v for k, v in last_val.items() if k.startswith("val/")})
    summary = dataclasses.replace(
        summary, run_dir=str(run.run_dir), model=cfg.model, beta=cfg.beta, device=str(run.device)
    )
    if run.rank.is_main:
        atomic_write_json(run.run_dir / "DONE", summary.to_dict())
    run.logger.info("done %s", json.dumps(summary.to_dict()))
    return RunResult(run.run_dir, summary)
