"""Reading a run folder back: every file is untrusted input (edited, damaged or copied in).

config.json, DONE and the checkpoints are schema-checked where they are read; a mismatch is one
`RunError` naming the file and the fix, never a KeyError or a size-mismatch traceback later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig
from vaelab.errors import ConfigError, RunError

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


def read_done(run_dir: str | Path) -> dict[str, Any]:
    """The DONE summary; its `epochs` must be a non-negative integer."""
    path = Path(run_dir) / "DONE"
    fix = f"delete {path} to mark the run unfinished, then resume it"
    done = read_json_object(path, fix)
    epochs = done.get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise RunError(f"{path}: 'epochs' is {epochs!r}, not a count; {fix}")
    return done


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
