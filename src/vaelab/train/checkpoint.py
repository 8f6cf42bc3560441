"""The run folder's files: checkpoints (dicts of tensors and plain values: state dicts, config,
position, clocks, RNG states; written atomically, read with weights_only), config.json and DONE.
Every file read back is untrusted input: a mismatch is one `RunError` naming the file and the fix.
"""

from __future__ import annotations

import io
import json
import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch

from vaelab import __version__
from vaelab.config import Count, TrainConfig
from vaelab.errors import ConfigError, RunError, first_line
from vaelab.fsutil import atomic_write_bytes
from vaelab.models import build_model
from vaelab.schema import RECORD, read

FORMAT_VERSION = 1
# Fields that fix the shape of the weights: a checkpoint must agree with its run on all of them.
ARCHITECTURE = ("model", "latent_dim", "channels", "norm")


# numpy's legacy state tuple, saved as a dict of these keys (its uint32 keys as an int64 tensor).
NUMPY_STATE = ("name", "keys", "pos", "has_gauss", "gauss")


def rng_state() -> dict[str, Any]:
    # The legacy tuple: numpy's global RandomState is always MT19937, whose state get_state
    # returns as a tuple (its stub also allows the dict of other bit generators).
    name, keys, pos, has_gauss, gauss = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True)
    )
    numpy = (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "numpy": dict(zip(NUMPY_STATE, numpy, strict=True)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    payload = {"format_version": FORMAT_VERSION, "vaelab_version": __version__, **payload}
    # Serialised in memory first: torch.save turns a full disk under it into a RuntimeError, and
    # the CLI must see the OSError (ENOSPC) to say the last checkpoint is intact.
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


# What every checkpoint holds, with the type each value must have (checked on load).
SCHEMA: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(("model", "optimizer", "config"), dict),
    "image_shape": list,
    **dict.fromkeys(("epoch", "batch", "step"), int),
    **dict.fromkeys(("elapsed_s", "best_val_loss"), (int, float)),
    "rng": dict,
}


def _damage_advice(path: Path) -> str:
    """What to do about a damaged checkpoint, by its file name."""
    return {
        "best.pt": "copy checkpoints/last.pt over it (the latest epoch, not necessarily the best) "
        "or re-train the run",
        "last.pt": "delete it to restart from scratch, or copy checkpoints/best.pt over it to "
        "resume from the best epoch",
    }.get(path.name, "delete it so that it is rebuilt, or restore it from a copy")


def load_run_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """A run's last.pt / best.pt, with every key of `SCHEMA` typed and a plausible image shape."""
    ckpt, path = load_checkpoint(path, map_location), Path(path)
    for key, kind in SCHEMA.items():
        value = ckpt.get(key)
        if key not in ckpt or not isinstance(value, kind) or isinstance(value, bool):
            what = (
                f" lacks '{key}'" if key not in ckpt else f": '{key}' is a {type(value).__name__}"
            )
            raise RunError(f"checkpoint {path}{what} (damaged); {_damage_advice(path)}")
    shape = ckpt["image_shape"]
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise RunError(f"checkpoint {path}: bad image_shape {shape!r}; {_damage_advice(path)}")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with `weights_only=True`; damage gives one line naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found")
    try:
        with warnings.catch_warnings():
            # torch warns before refusing a pickle with foreign globals; the refusal says it all.
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # torch.load fails in many ways on damaged bytes (struct.error, ...)
        raise RunError(
            f"checkpoint {path} is damaged or truncated ({first_line(e)}); {_damage_advice(path)}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise RunError(f"checkpoint {path} is not a vaelab v{FORMAT_VERSION} checkpoint")
    return ckpt


def load_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"):
    """(model in eval mode, TrainConfig) from `run_dir/checkpoints/{which}.pt`; it must describe
    the model of the run's config.json (when present) and its weights fit its own config."""
    path = Path(run_dir) / "checkpoints" / f"{which}.pt"
    ckpt = load_run_checkpoint(path, map_location=device)
    try:
        cfg = TrainConfig.from_dict(ckpt["config"], source=str(path)).validate()
    except ConfigError as e:
        raise RunError(f"{e}; {_damage_advice(path)}") from None
    if (Path(run_dir) / "config.json").exists():
        check_architecture(ckpt["config"], read_run_config(run_dir), path)
    try:
        model = build_model(cfg, tuple(ckpt["image_shape"]))
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, ValueError) as e:
        raise RunError(
            f"checkpoint {path}: weights do not fit its config ({first_line(e)}); "
            f"{_damage_advice(path)}"
        ) from None
    return model.to(device).eval(), cfg


# --------------------------------------------------------------------------- config.json and DONE


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


def read_done(run_dir: str | Path) -> TrainSummary:
    """The DONE summary, read strictly (its `val/` keys gathered into `val`)."""
    path = Path(run_dir) / "DONE"
    fix = f"delete {path} to mark the run unfinished, then resume it"
    data = read_json_object(path, fix)
    val = {k: v for k, v in data.items() if k.startswith("val/")}
    rest = {k: v for k, v in data.items() if not k.startswith("val/")}
    return read(TrainSummary, {**rest, "val": val}, source=str(path), error=RunError, fix=fix)


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
