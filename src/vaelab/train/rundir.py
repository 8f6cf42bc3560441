"""Reading a run folder back: every file is untrusted input (edited, damaged or copied in).

config.json, DONE and the checkpoints are schema-checked where they are read; a mismatch is one
`RunError` naming the file and the fix, never a KeyError or a size-mismatch traceback later.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vaelab.config import Count, TrainConfig
from vaelab.errors import ConfigError, RunError
from vaelab.schema import RECORD, read

# Fields that fix the shape of the weights: a checkpoint must agree with its run on all of them.
ARCHITECTURE = ("model", "latent_dim", "channels", "norm")


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """A JSON object from `path`; anything else is a `RunError` naming the file and `fix`."""
    if path.is_dir():
        raise RunError(f"{path} is a directory, not a file; {fix}")
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} not found; {fix}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise RunError(f"{path} is not valid JSON ({str(e)[:80]}); {fix}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} holds a JSON {type(value).__name__}, not an object; {fix}")
    return value


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The run's config.json as a validated `TrainConfig`."""
    path = Path(run_dir) / "config.json"
    fix = (
        "it was edited or damaged: restore it (each checkpoint records the config) or start "
        "a new run with another --out"
    )
    values = read_json_object(path, fix)
    try:
        return TrainConfig.from_dict(values, source=str(path)).validate()
    except ConfigError as e:
        raise RunError(f"{path}: {e}; {fix}") from None


@dataclass
class TrainSummary:
    """What training reports: DONE's content and `RunResult.summary`. DONE holds the `val`
    metrics (the last validation: val/loss, val/recon, val/kl) at its top level."""

    __pydantic_config__: ClassVar = RECORD

    epochs: Count
    steps: Count = 0
    train_time_s: float = 0.0
    best_val_loss: float = math.inf
    images_per_s_mean: float = 0.0
    """The whole run's throughput (every epoch, resumed parts included)."""
    val: dict[str, float] = field(default_factory=dict)
    run_dir: str | None = None
    model: str | None = None
    beta: float | None = None
    device: str | None = None
    stopped_at_epoch: int | None = None
    """Set when the caller's `on_epoch_end` stopped training (never in DONE)."""

    def to_dict(self) -> dict[str, Any]:
        """DONE's content."""
        rest = {k: v for k, v in vars(self).items() if k != "val" and v is not None}
        return {**self.val, **rest}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "DONE", fix: str = "") -> TrainSummary:
        val = {k: v for k, v in data.items() if k.startswith("val/")}
        rest = {k: v for k, v in data.items() if not k.startswith("val/")}
        return read(cls, {**rest, "val": val}, source=source, error=RunError, fix=fix)


def read_done(run_dir: str | Path) -> TrainSummary:
    """The DONE summary, read strictly."""
    path = Path(run_dir) / "DONE"
    fix = f"delete {path} to mark the run unfinished, then resume it"
    return TrainSummary.from_dict(read_json_object(path, fix), str(path), fix)


def check_architecture(ckpt_cfg: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """Refuse a checkpoint whose weights belong to another model (kind, size or norm)."""
    diffs = [
        f"{k}: {ckpt_cfg.get(k)!r} vs {getattr(cfg, k)!r}"
        for k in ARCHITECTURE
        if ckpt_cfg.get(k) != getattr(cfg, k)
    ]
    if diffs:
        raise RunError(
            f"{path} holds another model than this run's config.json ({'; '.join(diffs)}); it "
            "was copied from another run or the config was edited: restore the run's own file"
        )


def check_resumable(run_dir: str | Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """Before resuming: DONE, config.json and checkpoints/last.pt read back and consistent.
    Returns last.pt's contents (None when there is none yet), which the resumed run restores."""
    from vaelab.train.checkpoint import load_run_checkpoint

    run_dir = Path(run_dir)
    if (run_dir / "DONE").exists():
        read_done(run_dir)
    if not (run_dir / "config.json").exists():
        return None  # training refuses with "nothing to resume"
    saved = read_run_config(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        return None
    ckpt = load_run_checkpoint(last)
    check_architecture(ckpt["config"], saved, last)
    return ckpt
