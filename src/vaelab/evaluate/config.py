"""What an evaluation computes: the typed `EvalConfig` and the metric groups it can request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vaelab.errors import ConfigError

DEFAULT_PAIRS = ((5, 8), (4, 8), (1, 7))
# The metric groups, in the order they run; each is one function in vaelab.evaluate.metrics.
GROUPS = ("reconstruction", "likelihood", "samples", "probes", "interpolation")
# What a β-selection trial needs (reconstruction accuracy, sample FD and class entropy), without
# the IW-NLL, probes, interpolations or figures: EvalConfig(groups=SELECTION_GROUPS, figures=False).
SELECTION_GROUPS = ("reconstruction", "samples")
# The interpolation paths: in latent space (lerp, slerp) and the model-free pixel cross-fade.
PATH_MODES = ("lerp", "slerp", "pixel")


@dataclass
class EvalConfig:
    split: str = "test"
    """Split to evaluate on (probes always fit on `train` codes)."""
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    """Metric groups to compute (any of GROUPS); eval.json records which ran (`eval/group/…`)."""
    figures: bool = True
    """Write RUN_DIR/figures/*.png (independent of `groups`)."""
    iw_samples: int = 1000
    """K of the importance-weighted NLL (5000 to compare with published numbers)."""
    limit: int | None = None
    """Evaluate on the first N images of the split (default: all)."""
    iw_limit: int | None = None
    """IW-NLL on the first N of those images only (default: all of them)."""
    n_samples: int = 10_000
    """Prior samples for the Fréchet distance, precision/recall and class histogram."""
    pr_k: int = 3
    """k of the k-NN manifolds of precision and recall (Kynkäänniemi et al. use 3)."""
    probe_train: int | None = None
    """Training codes for the probes (default: the whole train split)."""
    pairs: tuple[tuple[int, int], ...] = DEFAULT_PAIRS
    """Label pairs (from, to) for interpolation."""
    n_pairs: int = 3
    """Image pairs per label pair."""
    steps: int = 5
    """Interpolated codes between the start and end image."""
    seed: int = 0
    checkpoint: str = "best"
    classifier: str = "standard"
    """Reference classifier variant: `standard` (≥ 99 % on MNIST) or `smoke` (tests only)."""
    device: str = "auto"
    log: Callable[[str], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A list, whatever the caller passed: the study compares vars(EvalConfig) with the JSON
        # it saved, where a tuple would never equal the list read back.
        self.groups = list(self.groups)

    def validate(self) -> EvalConfig:
        for name in ("iw_samples", "n_samples", "n_pairs", "steps", "pr_k"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"invalid evaluate option '{name}': must be >= 1, got {v!r}")
        for name in ("limit", "iw_limit", "probe_train"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"invalid evaluate option '{name}': must be >= 1, got {v!r}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError("invalid evaluate option 'checkpoint': best or last")
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or not self.groups:
            raise ConfigError(
                f"invalid evaluate option 'groups': {', '.join(unknown) or 'none given'}; "
                f"choose from {', '.join(GROUPS)}"
            )
        return self
