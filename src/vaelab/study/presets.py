"""Study presets: how much training and evaluation each stage gets.

- `default` (what `make study` runs): the course-quality study in minutes on a 2-core CPU. The same
  architecture and loss units as the course, a short high-learning-rate cosine schedule, and a
  β search by successive halving (every β gets a short run, the ones that can still win longer
  ones, the chosen β the full budget). `quick` is an alias.
- `course`: the course's literal schedule (batch 64, Adam 1e-3 constant; AE 10 epochs, β = 0/10
  5 epochs, 20 epochs per β trial, every trial the full budget), kept as the reference. `full` is
  an alias (its name in vaelab 0.1).
- `smoke`: a one-minute end-to-end check for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from vaelab.config import MAX_SEED, TrainConfig
from vaelab.errors import ConfigError
from vaelab.schema import check_fields


@dataclass
class StudyConfig:
    preset: str = "default"
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
    """Adam learning rate (the peak, with the cosine schedule)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    trial_kl_warmup_steps: int = 0
    """β ramps from 0 over this many steps in each β-search trial. Measured: with it, 195-step
    trials rank β as 2,000-step runs do; without it they under-rate larger β, which learn
    slowly at first. The AE, β = 0/10 and tuned runs train at constant β, as the course does."""
    latent_dim: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    # --- β search -------------------------------------------------------------------------------
    search: Literal["grid", "halving"] = "grid"
    """`grid`: every β trains `trial_epochs` on the whole train split (the course). `halving`:
    successive halving: rung 0 trains every β `trial_epochs` on `trial_limit_train` images, rung r
    η^r times as many epochs for the best ⌊n/η⌋ β of rung r−1, and the last rung trains the chosen
    β `tuned_epochs` on the whole train split."""
    trial_limit_train: int | None = None
    """Training images of each rung-0 trial (halving; None: `limit_train`)."""
    halving_eta: int = 3
    halving_rungs: int = 3
    """Rungs including the final full-budget run of the chosen β."""
    tuned_epochs: int = 20
    """Epochs of the chosen β's final run (halving)."""
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
    # Trials get the selection evaluation (what the choice needs: reconstruction accuracy and
    # rate/distortion, sample FD and class entropy); the AE, β = 0/10 and the tuned VAE get the
    # full one.
    trial_evaluation: Literal["selection", "full"] = "full"
    """Evaluation of grid-search trials (`full` in `course`, as vaelab 0.1 did); halving trials
    always get the selection evaluation."""
    selection_limit: int = 2000
    """Test images of a trial's selection evaluation."""
    selection_samples: int = 2000
    """Prior samples of a trial's selection evaluation (FD is biased by sample count: trials are
    compared with each other only, at equal count)."""
    eval_limit: int | None = None
    iw_samples: int = 1000
    iw_limit: int | None = 1000
    n_samples: int = 10_000
    probe_train: int | None = None
    classifier: str = "standard"
    # --- the β search's trial queue (an Optuna study; see vaelab.study.queue) ---------------
    heartbeat_interval: int = 10
    """Seconds between a running β-search trial's heartbeats in the study storage."""
    grace_period: int = 60
    """Seconds without a heartbeat after which a trial's worker counts as dead: the trial is
    failed and queued again (it resumes from its checkpoint where its run directory is
    reachable)."""
    max_retry: int = 3
    """Retries of a trial whose worker died or was interrupted."""

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
            "tuned_epochs",
            "halving_rungs",
            "selection_limit",
            "selection_samples",
            "batch_size",
            "iw_samples",
            "n_samples",
            "latent_dim",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"invalid study option '{name}': must be >= 1")
        if self.search not in ("grid", "halving"):
            raise ConfigError(
                f"invalid study option 'search': {self.search!r} is not grid or halving"
            )
        if self.halving_eta < 2:
            raise ConfigError("invalid study option 'halving_eta': must be >= 2")
        if not self.decades or any(b <= 0 for b in self.decades):
            raise ConfigError("invalid study option 'decades': positive β values needed")
        for name in ("limit_train", "limit_val", "eval_limit", "iw_limit", "probe_train"):
            if (getattr(self, name) or 1) < 1:
                raise ConfigError(f"invalid study option '{name}': must be >= 1 or unset")
        if self.heartbeat_interval < 1:
            raise ConfigError(
                "invalid study option 'heartbeat_interval': must be >= 1 s, got "
                f"{self.heartbeat_interval!r}"
            )
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"invalid study option 'grace_period': {self.grace_period!r} s must exceed "
                f"heartbeat_interval ({self.heartbeat_interval} s), or a live worker counts as dead"
            )
        if self.max_retry < 0:
            raise ConfigError("invalid study option 'max_retry': must be >= 0")
        if self.max_extensions < 0 or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError("invalid study option: max_extensions >= 0, seed in 0..2**32-1")
        # the per-run fields go through TrainConfig's own checks (lr, channels, device, ...)
        self.train_config("vae", 1.0, 1, trial=True)
        for name in ("trial_limit_train", "selection_limit", "selection_samples"):
            if (getattr(self, name) or 2) < 2:
                raise ConfigError(f"invalid study option '{name}': must be >= 2 or unset")
        if self.trial_evaluation not in ("selection", "full"):
            raise ConfigError("invalid study option 'trial_evaluation': selection or full")
        return self

    def train_config(
        self,
        model: str,
        beta: float,
        epochs: int,
        limit_train: int | None = None,
        trial: bool = False,
    ) -> TrainConfig:
        """The validated config of one of this study's runs; `trial`: a β-search trial, which
        trains with the preset's KL warm-up."""
        return TrainConfig(
            model=model,  # type: ignore[arg-type]
            beta=beta,
            epochs=epochs,
            dataset=self.dataset,
            data_dir=self.data_dir,
            latent_dim=self.latent_dim,
            channels=list(self.channels),
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            warmup_steps=self.warmup_steps,
            kl_warmup_steps=self.trial_kl_warmup_steps if trial else 0,
            seed=self.seed,
            device=self.device,
            limit_train=limit_train or self.limit_train,
            limit_val=self.limit_val,
            log_every=10,
        ).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        batch_size=128,
        lr=3e-3,
        lr_schedule="cosine",
        warmup_steps=100,
        trial_kl_warmup_steps=150,
        ae_epochs=4,
        extreme_epochs=1,
        search="halving",
        trial_epochs=1,
        trial_limit_train=25_000,
        halving_eta=3,
        halving_rungs=3,
        tuned_epochs=6,
        iw_samples=1000,
        iw_limit=300,
        n_samples=10_000,
        probe_train=10_000,
    ),
    "course": {},
    "smoke": dict(
        limit_train=1024,
        limit_val=256,
        ae_epochs=2,
        extreme_epochs=1,
        search="halving",
        trial_epochs=1,
        trial_limit_train=512,
        halving_eta=2,
        halving_rungs=3,
        tuned_epochs=2,
        batch_size=64,
        channels=[8, 16, 32, 32],
        decades=[0.1, 1.0, 10.0],
        max_extensions=0,
        eval_limit=400,
        selection_limit=400,
        selection_samples=400,
        iw_samples=8,
        iw_limit=100,
        n_samples=400,
        probe_train=1000,
        classifier="smoke",
    ),
}
# Earlier names, kept working: vaelab 0.1's `quick` and `full`.
ALIASES = {"quick": "default", "full": "course"}


def make_config(preset: str = "default", **overrides: Any) -> StudyConfig:
    preset = ALIASES.get(preset, preset) if isinstance(preset, str) else preset
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(
            f"invalid study option 'preset': {preset!r} is not one of {', '.join(PRESETS)} "
            f"(or the aliases {', '.join(f'{a} = {b}' for a, b in ALIASES.items())})"
        )
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(StudyConfig)})
    if unknown:
        raise ConfigError(f"unknown study option(s) {', '.join(unknown)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return StudyConfig(preset=preset, **values).validate()
