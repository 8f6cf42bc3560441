"""The training engine: one plain loop, resumable to the step, that never loses finished work.

`train(config, out_dir)` writes into the run directory:
  config.json (fully resolved), env.json, train.log, metrics.jsonl + metrics.csv,
  checkpoints/last.pt (every epoch, and on SIGINT/SIGTERM mid-epoch), checkpoints/best.pt (best
  validation loss), and DONE (the final summary) when training completes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vaelab import __version__
from vaelab.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vaelab.config import TrainConfig
from vaelab.data import TensorLoader, load_arrays
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError, RunError
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.losses import LossParts, objective
from vaelab.models import AutoEncoder, build_model
from vaelab.runlog import MetricsLog
from vaelab.runlog import read_metrics as _read_metrics

# Fields that may change when a run is resumed; any other difference is refused.
RESUMABLE_OVERRIDES = ("epochs", "device", "threads", "log_every")


class TrainingInterrupted(RunError):
    exit_code = 130


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"invalid config field 'device': {name} requested but CUDA is "
            "unavailable; use --device cpu or auto"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("invalid config field 'device': mps is unavailable; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, hardware and source revision, saved as env.json for reproducibility."""
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
    env = {
        "vaelab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": commit,
        "argv": sys.argv,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


# --------------------------------------------------------------------------- run directory
def _prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> tuple[TrainConfig, bool]:
    """Apply the refusal rules; return the config to run and whether a DONE run is extended."""
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        if resume:
            raise RunError(
                f"nothing to resume in {run_dir} (no config.json); drop --resume to "
                "start a new run there"
            )
        return cfg, False
    if not resume:
        state = "a finished run (DONE)" if (run_dir / "DONE").exists() else "an unfinished run"
        raise RunError(
            f"{run_dir} already holds {state}; pass --resume to continue it (with "
            "more --epochs to extend it) or choose another --out"
        )
    saved = TrainConfig.from_dict(json.loads(saved_path.read_text()), source=str(saved_path))
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
    return cfg, (run_dir / "DONE").exists()


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


def _setup_logger(run_dir: Path) -> logging.Logger:
    logger = logging.getLogger(f"vaelab.run.{run_dir.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fh = logging.FileHandler(run_dir / "train.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(fh)
    return logger


# --------------------------------------------------------------------------- the loop
def kl_weight(cfg: TrainConfig, step: int) -> float:
    """β, ramped linearly over the first `kl_warmup_steps` steps when warm-up is on."""
    if cfg.model != "vae":
        return 0.0
    if cfg.kl_warmup_steps > 0:
        return cfg.beta * min(1.0, step / cfg.kl_warmup_steps)
    return cfg.beta


def train_step(
    model: AutoEncoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    beta: float,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
) -> LossParts:
    """One optimisation step on batch x (B, C, H, W); returns the detached loss parts."""
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


def _nonfinite_term(parts: LossParts) -> str | None:
    for name in ("recon", "kl", "total"):
        if not torch.isfinite(getattr(parts, name)).item():
            return "loss" if name == "total" else name
    return None


def _progress(iterable: Any, **kw: Any) -> Iterator[Any]:
    return tqdm(iterable, disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True, **kw)


def train(
    cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, tensorboard: bool = True
) -> RunResult:
    """Train `cfg` into `out_dir` (see the module docstring); returns the DONE summary."""
    cfg.validate()
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(run_dir / ".lock", blocking=False):
        cfg, extending = _prepare_run_dir(cfg, run_dir, resume)
        if resume and extending:
            done = json.loads((run_dir / "DONE").read_text())
            if done.get("epochs", 0) >= cfg.epochs:
                return RunResult(run_dir, done)  # already finished: nothing to do
        return _run(cfg, run_dir, resume, tensorboard)


def _run(cfg: TrainConfig, run_dir: Path, resume: bool, tensorboard: bool) -> RunResult:
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    logger = _setup_logger(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    seed_everything(cfg.seed)

    arrays = load_arrays(cfg.dataset, cfg.data_dir)
    x_train, y_train = split_arrays(arrays, "train")
    x_val, y_val = split_arrays(arrays, "val")
    x_train, y_train = x_train[: cfg.limit_train], y_train[: cfg.limit_train]
    x_val, y_val = x_val[: cfg.limit_val], y_val[: cfg.limit_val]
    train_loader = TensorLoader(
        x_train,
        y_train,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        binarize=cfg.binarize,
        device=device,
    )
    val_loader = TensorLoader(
        x_val,
        y_val,
        1000,
        shuffle=False,
        seed=cfg.seed + 1,
        binarize="static" if cfg.binarize != "none" else "none",
        device=device,
    )
    image_shape = tuple(int(s) for s in x_train.shape[1:])

    model = build_model(cfg, image_shape).to(device)  # type: ignore[arg-type]
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_epoch, start_batch, step, elapsed, best = 0, 0, 0, 0.0, math.inf
    if resume and (ckpt_dir / "last.pt").exists():
        ckpt = load_checkpoint(ckpt_dir / "last.pt", map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        start_epoch, start_batch = ckpt["epoch"], ckpt["batch"]
        step, elapsed, best = ckpt["step"], ckpt["elapsed_s"], ckpt["best_val_loss"]
        MetricsLog.truncate_after(run_dir, step)
        logger.info(
            "resumed from %s at epoch %d batch %d (step %d)",
            ckpt_dir / "last.pt",
            start_epoch,
            start_batch,
            step,
        )
    elif resume:
        MetricsLog.truncate_after(run_dir, 0)  # crashed before the first checkpoint
    with contextlib.suppress(FileNotFoundError):
        (run_dir / "DONE").unlink()  # extending a finished run: it is unfinished again

    atomic_write_json(run_dir / "config.json", cfg.to_dict())
    atomic_write_json(run_dir / "env.json", {**environment(device), "resumed_at_step": step})
    logger.info("config %s", json.dumps(cfg.to_dict()))
    metrics = MetricsLog(run_dir, tensorboard=tensorboard)
    autocast: contextlib.AbstractContextManager = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if cfg.precision == "bf16"
        else contextlib.nullcontext()
    )
    if cfg.precision == "bf16" and device.type == "cpu":
        msg = (
            "bf16 autocast on a CPU trains slower than fp32 unless the CPU has native bf16 "
            "(measured 0.67-0.93x of fp32 on an AVX-512 machine; far slower on AVX2-only CPUs); "
            "prefer --precision fp32 here"
        )
        logger.warning(msg)
        print(f"vaelab: warning: {msg}", file=sys.stderr)
    check_every = 1 if device.type == "cpu" else cfg.log_every  # CUDA: avoid a sync per step

    def checkpoint(epoch: int, batch: int, name: str = "last") -> None:
        save_checkpoint(
            ckpt_dir / f"{name}.pt",
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "config": cfg.to_dict(),
                "image_shape": list(image_shape),
                "epoch": epoch,
                "batch": batch,
                "step": step,
                "elapsed_s": elapsed,
                "best_val_loss": best,
                "rng": rng_state(),
            },
        )

    summary: dict[str, Any] = {}
    try:
        with _StopFlag() as stop:
            for epoch in range(start_epoch, cfg.epochs):
                model.train()
                train_loader.set_epoch(epoch)
                t_epoch, seen = time.perf_counter(), 0
                acc = torch.zeros(3, dtype=torch.float64, device=device)
                acc_n, t_log = 0, time.perf_counter()
                first = start_batch if epoch == start_epoch else 0
                batches = _progress(
                    enumerate(train_loader),
                    total=len(train_loader),
                    desc=f"epoch {epoch + 1}/{cfg.epochs}",
                )
                for batch, (x, _) in batches:
                    if batch < first:
                        continue  # replay position after a mid-epoch resume
                    beta = kl_weight(cfg, step)
                    parts = train_step(model, optimizer, x, beta, cfg, autocast)
                    step += 1
                    seen += len(x)
                    acc += torch.stack([parts.total, parts.recon, parts.kl]).double()
                    acc_n += 1
                    if (
                        step % check_every == 0
                        and not torch.isfinite(parts.total).item()
                        and (term := _nonfinite_term(parts))
                    ):
                        raise RunError(
                            f"non-finite train/{term} at step {step} (epoch {epoch + 1}); "
                            f"{ckpt_dir / 'last.pt'} from the last good epoch is intact; "
                            "lower --lr, add --kl-warmup-steps or check the data"
                        )
                    if step % cfg.log_every == 0:
                        loss, recon, kl = (acc / acc_n).tolist()
                        if not all(map(math.isfinite, (loss, recon, kl))):
                            raise RunError(
                                f"non-finite training loss between steps {step - acc_n + 1} and "
                                f"{step}; {ckpt_dir / 'last.pt'} is intact; lower --lr"
                            )
                        now = time.perf_counter()
                        rec = {
                            "step": step,
                            "epoch": epoch + (batch + 1) / len(train_loader),
                            "train/loss": loss,
                            "train/recon": recon,
                            "train/kl": kl,
                            "train/beta": beta,
                            "images_per_s": acc_n * cfg.batch_size / max(now - t_log, 1e-9),
                        }
                        metrics.log(rec)
                        batches.set_postfix(
                            loss=f"{loss:.2f}",
                            recon=f"{recon:.2f}",  # type: ignore[attr-defined]
                            kl=f"{kl:.2f}",
                            img_s=f"{rec['images_per_s']:.0f}",
                        )
                        acc.zero_()
                        acc_n, t_log = 0, now
                    if stop.signal is not None:
                        elapsed += time.perf_counter() - t_epoch
                        checkpoint(epoch, batch + 1)
                        metrics.close()
                        name = signal.Signals(stop.signal).name
                        logger.info("stopped by %s at epoch %d step %d", name, epoch + 1, step)
                        raise TrainingInterrupted(
                            f"stopped by {name} at epoch {epoch + 1}, step {step}; progress "
                            f"saved to {ckpt_dir / 'last.pt'}; resume with: vaelab train "
                            f"--out {run_dir} --resume"
                        )
                epoch_time = time.perf_counter() - t_epoch
                elapsed += epoch_time
                val = validation_loss(model, val_loader, cfg, seed=cfg.seed + 10_007)
                rec = {
                    "step": step,
                    "epoch": epoch + 1,
                    **val,
                    "epoch_time_s": epoch_time,
                    "images_per_s": seen / max(epoch_time, 1e-9),
                }
                metrics.log(rec)
                metrics.sync()
                logger.info("epoch %d/%d %s", epoch + 1, cfg.epochs, json.dumps(rec))
                if not math.isfinite(val["val/loss"]):
                    raise RunError(
                        f"non-finite val/loss after epoch {epoch + 1}; "
                        f"{ckpt_dir / 'last.pt'} is intact; lower --lr"
                    )
                if val["val/loss"] < best:
                    best = val["val/loss"]
                    checkpoint(epoch + 1, 0, "best")
                checkpoint(epoch + 1, 0)
                summary = {
                    **val,
                    "epochs": epoch + 1,
                    "steps": step,
                    "train_time_s": elapsed,
                    "best_val_loss": best,
                    "images_per_s": rec["images_per_s"],
                }
    finally:
        if not metrics._file.closed:
            metrics.close()
    if not summary:  # resumed after the last epoch's checkpoint, before DONE was written
        val_records = [r for r in _read_metrics(run_dir / "metrics.jsonl") if "val/loss" in r]
        summary = (
            {
                **{k: v for k, v in val_records[-1].items() if k.startswith("val/")},
                "epochs": cfg.epochs,
                "steps": step,
                "train_time_s": elapsed,
                "best_val_loss": best,
            }
            if val_records
            else {"epochs": cfg.epochs}
        )
    summary.update(
        {"run_dir": str(run_dir), "model": cfg.model, "beta": cfg.beta, "device": str(device)}
    )
    atomic_write_json(run_dir / "DONE", summary)
    logger.info("done %s", json.dumps(summary))
    return RunResult(run_dir, summary)
