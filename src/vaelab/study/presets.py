"""Study presets: how much training and evaluation each stage gets.

`full` follows the course schedule; `quick` (the default of `make study`) keeps every phenomenon
visible in about 10 minutes on a 2-core CPU; `smoke` is a 1-minute end-to-end check for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vaelab.config import MAX_SEED, TrainConfig
from vaelab.errors import ConfigError
from vaelab.schema import check_fields


@dataclass
class StudyConfig:
    preset: str = "quick"
    dataset: str = "mnist"
    data_dir: str | None = None
    out: str = "study"
    device: str = "auto"
    seed: int = 0
    # --- training schedule -------------------------------------------------------------------
    limit_train: int | None = None
    """Training images per run (None: the whole 50,000-image train split)."""
    limit_val: int | None = None
    ae_epochs: int = 10
    extreme_epochs: int = 5
    """Epochs of the β = 0 and β = 10 experiments."""
    trial_epochs: int = 20
    """Epochs of each β-search trial."""
    batch_size: int = 64
    lr: float = 1e-3
    latent_dim: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    # --- β search -------------------------------------------------------------------------------
    decades: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    """First β grid, 10× apart; extended by a decade while the best β sits on an edge."""
    max_extensions: int = 2
    refine: bool = True
    """Then try best·10^(−½) and best·10^(+½)."""
    min_recon_accuracy: float = 0.9
    """Selection: the classifier must still recognise this share of reconstructions ..."""
    min_class_entropy: float = 2.0
    """... and samples must cover the classes (entropy in nats; ln 10 ≈ 2.303 is uniform) ..."""
    # ... and among the β that pass both, the lowest sample Fréchet distance wins.
    # --- evaluation -----------------------------------------------------------------------------
    eval_limit: int | None = None
    iw_samples: int = 1000
    iw_limit: int | None = 1000
    n_samples: int = 10_000
    probe_train: int | None = None
    classifier: str = "standard"

    def validate(self) -> StudyConfig:
        check_fields(self, what="study option")  # types first: "x" < 1 would be a TypeError
        if self.preset not in PRESETS:
            raise ConfigError(
                f"invalid study option 'preset': {self.preset!r} is not one of {', '.join(PRESETS)}"
            )
        for name in (
            "ae_epochs",
            "extreme_epochs",
            "trial_epochs",
            "batch_size",
            "iw_samples",
            "n_samples",
            "latent_dim",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"invalid study option '{name}': must be >= 1")
        if not self.decades or any(b <= 0 for b in self.decades):
            raise ConfigError("invalid study option 'decades': positive β values needed")
        for name in ("limit_train", "limit_val", "eval_limit", "iw_limit", "probe_train"):
            if (getattr(self, name) or 1) < 1:
                raise ConfigError(f"invalid study option '{name}': must be >= 1 or unset")
        if self.max_extensions < 0 or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError("invalid study option: max_extensions >= 0, seed in 0..2**32-1")
        # the per-run fields go through TrainConfig's own checks (lr, channels, device, ...)
        TrainConfig(
            dataset=self.dataset,
            data_dir=self.data_dir,
            latent_dim=self.latent_dim,
            channels=list(self.channels),
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            device=self.device,
            limit_train=self.limit_train,
            limit_val=self.limit_val,
        ).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": dict(
        limit_train=25_000,
        ae_epochs=4,
        extreme_epochs=3,
        trial_epochs=3,
        eval_limit=5000,
        iw_samples=200,
        iw_limit=500,
        n_samples=5000,
        probe_train=10_000,
    ),
    "smoke": dict(
        limit_train=1024,
        limit_val=256,
        ae_epochs=2,
        extreme_epochs=1,
        trial_epochs=1,
        batch_size=64,
        channels=[8, 16, 32, 32],
        decades=[0.1, 1.0, 10.0],
        max_extensions=0,
        eval_limit=400,
        iw_samples=8,
        iw_limit=100,
        n_samples=400,
        probe_train=1000,
        classifier="smoke",
    ),
}


def make_config(preset: str = "quick", **overrides: Any) -> StudyConfig:
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(
            f"invalid study option 'preset': {preset!r} is not one of {', '.join(PRESETS)}"
        )
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(StudyConfig)})
    if unknown:
        raise ConfigError(f"unknown study option(s) {', '.join(unknown)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return StudyConfig(preset=preset, **values).validate()
