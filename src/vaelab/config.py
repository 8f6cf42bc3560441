"""Typed, validated configuration of a training run.

The CLI and TOML files only fill in `TrainConfig`; `validate()` rejects bad values before any work
starts, with one line naming the field and the fix. Each run saves its fully resolved config as
`config.json` next to its results.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vaelab.errors import ConfigError

ModelKind = Literal["ae", "vae"]
Likelihood = Literal["gaussian", "bernoulli"]


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow the course study."""

    model: ModelKind = "ae"
    """`ae`: deterministic auto-encoder; `vae`: β-VAE with a diagonal-Gaussian posterior."""
    beta: float = 1.0
    """Weight of the KL term (VAE only); 0 turns the VAE into a noisy AE."""
    likelihood: Likelihood = "gaussian"
    """`gaussian`: sigmoid mean, fixed variance `sigma2`, loss = per-image SSE/(2σ²);
    `bernoulli`: per-image BCE from logits (for binarised data)."""
    sigma2: float = 0.5
    """Decoder variance of the Gaussian likelihood; ½ makes SSE + KL the −ELBO up to (D/2)·log π."""
    binarize: Literal["none", "static", "dynamic"] = "none"
    """Pixel binarisation of the training data (`dynamic`: a new Bernoulli draw every epoch)."""
    dataset: str = "mnist"
    """`mnist`, `fashion-mnist` or `idx` (with `data_dir`)."""
    data_dir: str | None = None
    """Folder of IDX files: a source for mnist/fashion-mnist, or the data of dataset `idx`."""
    latent_dim: int = 64
    """Size of the embedding z (nz)."""
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    """Output channels of the four encoder convolutions (the decoder mirrors them)."""
    norm: bool = True
    """BatchNorm after every hidden convolution, as in the reference architecture."""
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    """Adam learning rate; with a schedule, its peak."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """`constant` (the course); `cosine`: linear warm-up over `warmup_steps`, then a cosine decay
    from `lr` to `lr·min_lr_ratio` at the last step of `epochs`."""
    warmup_steps: int = 0
    """Steps of linear learning-rate warm-up from lr/warmup_steps to lr (`cosine` only)."""
    min_lr_ratio: float = 0.0
    """Final learning rate of the cosine decay, as a fraction of `lr`."""
    adam_beta1: float = 0.9
    """Adam's first-moment decay (PyTorch's default 0.9)."""
    adam_beta2: float = 0.999
    """Adam's second-moment decay (PyTorch's default 0.999)."""
    kl_warmup_steps: int = 0
    """Linear KL warm-up: β·min(1, step/N); 0 disables it."""
    seed: int = 0
    device: str = "auto"
    """`auto` (cuda, then mps, then cpu), `cpu`, `cuda`, `cuda:N` or `mps`."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """`bf16` uses autocast for the forward pass (for GPUs; on CPUs without native bf16 it is
    slower than fp32). Losses and evaluation are always fp32."""
    limit_train: int | None = None
    """Train on the first N training images only (quick experiments, tests)."""
    limit_val: int | None = None
    """Validate on the first N validation images only."""
    log_every: int = 50
    """Steps between logged training metrics."""
    threads: int | None = None
    """torch intra-op threads; None keeps PyTorch's default (all cores)."""

    def validate(self) -> TrainConfig:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"invalid config field '{name}': {why}")

        choices = {
            "model": ("ae", "vae"),
            "likelihood": ("gaussian", "bernoulli"),
            "binarize": ("none", "static", "dynamic"),
            "precision": ("fp32", "bf16"),
            "dataset": ("mnist", "fashion-mnist", "idx"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                got = getattr(self, name)
                raise bad(name, f"{got!r} is not one of {', '.join(allowed)}")
        if self.dataset == "idx" and not self.data_dir:
            raise bad("data_dir", "dataset 'idx' needs --data-dir DIR")
        for name in ("latent_dim", "epochs", "batch_size", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, f"must be an integer >= 1, got {value!r}")
        for name in ("limit_train", "limit_val", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, f"must be an integer >= 1 or unset, got {value!r}")
        if (
            not isinstance(self.beta, (int, float))
            or not self.beta >= 0
            or self.beta == float("inf")
        ):
            raise bad("beta", f"must be a finite number >= 0, got {self.beta!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 10:
            raise bad("lr", f"must be a number in (0, 10), got {self.lr!r}")
        if not isinstance(self.sigma2, (int, float)) or not self.sigma2 > 0:
            raise bad("sigma2", f"must be > 0, got {self.sigma2!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise bad("lr_schedule", f"{self.lr_schedule!r} is not one of constant, cosine")
        if self.lr_schedule == "constant" and self.warmup_steps:
            raise bad("warmup_steps", "needs --lr-schedule cosine (the constant schedule has none)")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise bad("warmup_steps", f"must be an integer >= 0, got {self.warmup_steps!r}")
        if not isinstance(self.min_lr_ratio, (int, float)) or not 0 <= self.min_lr_ratio <= 1:
            raise bad("min_lr_ratio", f"must be a number in [0, 1], got {self.min_lr_ratio!r}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise bad(name, f"must be a number in [0, 1), got {value!r}")
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise bad("kl_warmup_steps", f"must be an integer >= 0, got {self.kl_warmup_steps!r}")
        if len(self.channels) != 4 or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise bad("channels", f"must be 4 positive integers, got {self.channels!r}")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda", "mps") or dev.startswith("cuda:")):
            raise bad("device", f"{dev!r} is not auto, cpu, cuda, cuda:N or mps")
        self.beta = float(self.beta)
        self.lr = float(self.lr)
        self.sigma2 = float(self.sigma2)
        self.min_lr_ratio = float(self.min_lr_ratio)
        self.adam_beta1 = float(self.adam_beta1)
        self.adam_beta2 = float(self.adam_beta2)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown config field(s) {', '.join(unknown)}; "
                f"valid fields: {', '.join(sorted(known))}"
            )
        return cls(**values)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict of `TrainConfig` fields ([train] table or top)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return dict(data.get("train", data))
