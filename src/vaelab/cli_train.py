"""`vaelab train`: flags fill a `TrainConfig` (defaults ← TOML file ← flags)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig, load_toml

# flag -> (config field, type, help). Every flag defaults to None: "not given".
FLAGS: list[tuple[str, str, Any, str]] = [
    ("--model", "model", str, "ae or vae (default ae)"),
    ("--beta", "beta", float, "KL weight β >= 0 (default 1)"),
    ("--likelihood", "likelihood", str, "gaussian (SSE, σ²=½) or bernoulli (BCE)"),
    ("--sigma2", "sigma2", float, "Gaussian decoder variance (default 0.5)"),
    ("--binarize", "binarize", str, "none, static or dynamic (default none)"),
    ("--dataset", "dataset", str, "mnist, fashion-mnist or idx (default mnist)"),
    ("--data-dir", "data_dir", str, "folder of IDX files"),
    ("--latent-dim", "latent_dim", int, "embedding size nz (default 64)"),
    ("--epochs", "epochs", int, "epochs (default 10)"),
    ("--batch-size", "batch_size", int, "batch size (default 64)"),
    ("--lr", "lr", float, "Adam learning rate (default 1e-3)"),
    ("--lr-schedule", "lr_schedule", str, "constant (default) or cosine (warm-up + decay)"),
    ("--warmup-steps", "warmup_steps", int, "LR warm-up steps of the cosine schedule"),
    ("--min-lr-ratio", "min_lr_ratio", float, "final LR of the cosine decay, as a share of lr"),
    ("--adam-beta1", "adam_beta1", float, "Adam first-moment decay (default 0.9)"),
    ("--adam-beta2", "adam_beta2", float, "Adam second-moment decay (default 0.999)"),
    ("--kl-warmup-steps", "kl_warmup_steps", int, "linear KL warm-up steps (default 0)"),
    ("--seed", "seed", int, "random seed (default 0)"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N or mps (default auto)"),
    ("--precision", "precision", str, "fp32 or bf16 autocast (default fp32)"),
    ("--limit-train", "limit_train", int, "train on the first N images only"),
    ("--limit-val", "limit_val", int, "validate on the first N images only"),
    ("--log-every", "log_every", int, "steps between logged metrics (default 50)"),
    ("--threads", "threads", int, "torch CPU threads (default: all cores)"),
]


def add_train_flags(p: argparse.ArgumentParser) -> None:
    for flag, _, typ, help_ in FLAGS:
        p.add_argument(flag, type=typ, default=None, help=help_)
    p.add_argument("--no-norm", action="store_true", help="disable BatchNorm")
    p.add_argument(
        "--channels",
        type=lambda s: [int(c) for c in s.split(",")],
        default=None,
        help="encoder channels, 4 comma-separated ints (default 32,64,128,256)",
    )
    p.add_argument("--config", default=None, help="TOML file with config fields")


def config_from_args(args: argparse.Namespace, resume_dir: Path | None = None) -> TrainConfig:
    values: dict[str, Any] = {}
    if resume_dir is not None and (resume_dir / "config.json").is_file():
        values.update(json.loads((resume_dir / "config.json").read_text()))
    if args.config:
        values.update(load_toml(args.config))
    for _, field, _, _ in FLAGS:
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    if args.channels is not None:
        values["channels"] = args.channels
    if args.no_norm:
        values["norm"] = False
    return TrainConfig.from_dict(values, source=args.config or "command line").validate()


def cmd_train(args: argparse.Namespace) -> int:
    from vaelab.training import train

    out = Path(args.out)
    cfg = config_from_args(args, out if args.resume else None)
    result = train(cfg, out, resume=args.resume)
    s = result.summary
    print(
        f"done: {out} ({s.get('epochs')} epochs, val/loss {s.get('val/loss', float('nan')):.3f}, "
        f"val/recon {s.get('val/recon', float('nan')):.3f}, val/kl {s.get('val/kl', 0.0):.3f})"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an AE or β-VAE into a run directory")
    add_train_flags(p)
    p.add_argument("--out", required=True, help="run directory (created)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt"
    )
    p.set_defaults(func=cmd_train)
