"""`vaelab train`: flags fill a `TrainConfig` (defaults <- saved config <- TOML file <- flags).

The flags are derived from `TrainConfig`'s fields and docstrings (`vaelab.cli.fields`), and
everything is checked before the first batch: the config, the output folder, the run folder's
files when resuming, the dataset and whether the model fits in memory. `--nproc N` then starts N
data-parallel ranks of the same command through torch's launcher (`vaelab.train.ddp`).
"""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaelab.cli.fields import add_dataclass_flags, given_values, to_flags
from vaelab.config import TrainConfig, load_toml
from vaelab.errors import RunError

if TYPE_CHECKING:
    from vaelab.train.checkpoint import TrainSummary


def config_from_args(args: argparse.Namespace, resume_dir: Path | None = None) -> TrainConfig:
    """The validated config: saved config.json (when resuming), then --config, then flags."""
    from vaelab.train.checkpoint import read_run_config

    values: dict[str, Any] = {}
    if resume_dir is not None and (resume_dir / "config.json").exists():
        values.update(read_run_config(resume_dir).to_dict())
    source = "command line"
    if args.config is not None:
        values.update(load_toml(args.config))
        source = str(args.config)
    values.update(given_values(args, args.config_fields))
    return TrainConfig.from_dict(values, source=source).validate()


def rank_argv(args: argparse.Namespace) -> list[str]:
    """The `vaelab` arguments each rank of `--nproc` runs: this command without --nproc."""
    argv = ["train", *to_flags(given_values(args, args.config_fields))]
    if args.config is not None:
        argv.append(f"--config={args.config}")
    return [*argv, f"--out={args.out}", *(["--resume"] if args.resume else [])]


def cmd_train(args: argparse.Namespace) -> int:
    from vaelab.train.loop import train
    from vaelab.train.preflight import check_out_dir, check_training

    out = check_out_dir(args.out)
    cfg = config_from_args(args, out if args.resume else None)
    if args.nproc is not None:
        from vaelab.train.checkpoint import read_done
        from vaelab.train.ddp import check_nproc, launch

        check_nproc(args.nproc, cfg)
        if args.nproc > 1:  # one process trains: `train` checks
            check_training(cfg, out, args.resume)  # before any rank starts
            launch(args.nproc, rank_argv(args), out, cfg.threads)
            _report_done(out, read_done(out))
            return 0
    try:
        result = train(cfg, out, resume=args.resume)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise
        from vaelab.cli import os_error_message

        raise RunError(
            f"{os_error_message(e)}; the checkpoints already in {out / 'checkpoints'} are "
            f"intact: resume with `vaelab train --out {out} --resume`"
        ) from None
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun rank 0 reports
    _report_done(out, result.summary)
    return 0


def _report_done(out: Path, s: TrainSummary) -> None:
    v, nan = s.val, float("nan")
    print(
        f"done: {out} ({s.epochs} epochs, val/loss {v.get('val/loss', nan):.3f}, "
        f"val/recon {v.get('val/recon', nan):.3f}, val/kl {v.get('val/kl', 0.0):.3f})"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an AE or β-VAE into a run directory")
    p.set_defaults(config_fields=add_dataclass_flags(p, TrainConfig))
    p.add_argument("--config", help="TOML file with config fields ([train] or top)")
    p.add_argument("--out", required=True, help="run directory (created)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt"
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N local data-parallel processes, as `torchrun --standalone "
        "--nproc_per_node N` would (global --batch-size divisible by N; one core or GPU each; "
        "rank logs in OUT/ranks/)",
    )
    p.set_defaults(func=cmd_train)
