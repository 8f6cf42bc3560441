"""Study presets: how much training and evaluation each stage gets.

- `default` (what `make study` runs): the course-quality study in minutes on a 2-core CPU. The same
  architecture and loss units as the course, a short high-learning-rate cosine schedule, and a
  β search by successive halving (every β gets a short run, the ones that can still win longer
  ones, the chosen β the full budget). `quick` is an alias.
- `course`: the course's literal schedule (batch 64, Adam 1e-3 constant; AE 10 epochs, β = 0/10
  5 epochs, 20 epochs per β trial, every trial the full budget), kept as the reference. `full` is
  an alias (its name in vaelab 0.1).
- `smoke`: a one-minute end-to-end check for tests.

On a picture folder (or IDX files) with fewer training images than MNIST, `default` keeps its
optimizer steps: its epochs grow in proportion (`STEP_BUDGET_IMAGES`), and the config recorded in
study.json holds the epochs that ran.
"""

from __future__ import annotations

from typing import Any

from vaelab.config import StudyConfig
from vaelab.errors import ConfigError

__all__ = ["ALIASES", "PRESETS", "StudyConfig", "make_config"]

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
        # NHWC and Adam's fused kernel: 1.09–1.22× the training steps/s together on a 2-core CPU
        # (benchmarks/bench_step.py); deterministic, resume exactly, not the course's bits.
        channels_last=True,
        fused_adam=True,
        # IW-NLL sized by the precision the report needs (docs/evaluation.md, "Sizing the
        # IW-NLL"): its standard error over images under 1 nat, K's truncation bias (the drop
        # from K to K = 1000) under that standard error. Measured on a VAE: SE 0.66 nats on 200
        # images, bias 0.47 nats at K = 250; 6× fewer decoder passes than K = 1000 on 300.
        iw_samples=250,
        iw_limit=200,
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


STEP_BUDGET_IMAGES = 50_000
"""The `default` preset's epochs are for this many training images (MNIST's and Fashion-MNIST's
train split). Its schedule is tuned in optimizer steps (the LR and KL warm-ups, the cosine
decay), so on a smaller picture folder each stage trains proportionally more epochs and keeps
about its steps. Measured on 20,000 colour pictures of 64×64 (14,286 training images;
benchmarks/bench_colour_study.py): with the epochs as written, one-epoch runs had 112 steps
(MNIST's: 391) and the study ended with AE MSE 0.00429, tuned sample FD 463; keeping the steps,
0.00286 and 250, in 35.0 min instead of 21.6."""


def make_config(preset: str = "default", **overrides: Any) -> StudyConfig:
    preset = ALIASES.get(preset, preset) if isinstance(preset, str) else preset
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(
            f"invalid study option 'preset': {preset!r} is not one of {', '.join(PRESETS)} "
            f"(or the aliases {', '.join(f'{a} = {b}' for a, b in ALIASES.items())})"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = StudyConfig.from_options({"preset": preset, **PRESETS[preset], **given}).validate()
    if preset == "default" and cfg.train.dataset in ("folder", "idx"):
        cfg = _keep_steps(cfg, given)
    return cfg


def _keep_steps(cfg: StudyConfig, given: dict[str, Any]) -> StudyConfig:
    """The default preset on a train split smaller than `STEP_BUDGET_IMAGES`: each epoch count
    it sets (not one the caller gave) times the ratio, rounded, so every stage keeps about its
    optimizer steps; a β-search trial's by its own images (`trial_limit_train`)."""
    from vaelab.data.store import load_arrays, split_arrays

    c = cfg.train
    x, _ = split_arrays(load_arrays(*c.data_args), "train")
    n = min(len(x), c.limit_train or len(x))
    trial_n = min(n, cfg.trial_limit_train or n)
    scale = dict.fromkeys(("ae_epochs", "extreme_epochs", "tuned_epochs"), STEP_BUDGET_IMAGES / n)
    scale["trial_epochs"] = (cfg.trial_limit_train or STEP_BUDGET_IMAGES) / trial_n
    for name, ratio in scale.items():
        if name not in given and ratio > 1:
            setattr(cfg, name, getattr(cfg, name) * max(1, round(ratio)))
    return cfg.validate()
