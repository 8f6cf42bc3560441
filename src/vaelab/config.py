"""Typed, validated configuration: `TrainConfig` (a training run), `EvalConfig` (an evaluation)
and `StudyConfig` (the study, whose runs and evaluations are built from its fields).

The CLI and TOML files only fill these in; ranges are written into the annotations and checked,
with the types, by the strict reader (vaelab.schema); `validate()` adds the checks that relate
fields, with one line naming the field and the fix. Each run saves its fully resolved config as
`config.json` next to its results.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Gt, Interval, Len

from vaelab.errors import ConfigError
from vaelab.schema import CONFIG, check, read

# Seeds are offset and multiplied into derived streams (validation noise, pair picks), which
# must stay within torch's 64-bit seed range; numpy's legacy seeding is 32-bit anyway.
MAX_SEED = 2**32 - 1
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda|cuda:\d+|mps")
Positive = Annotated[int, Ge(1)]
Count = Annotated[int, Ge(0)]
Seed = Annotated[int, Interval(ge=0, le=MAX_SEED)]
Fraction = Annotated[float, Interval(ge=0, le=1)]
Decay = Annotated[float, Interval(ge=0, lt=1)]
Channels = Annotated[list[Positive], Len(4, 4)]
LearningRate = Annotated[float, Interval(gt=0, lt=10)]
ModelKind = Literal["ae", "vae"]
Likelihood = Literal["gaussian", "bernoulli"]


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow the course study."""

    __pydantic_config__: ClassVar = CONFIG

    model: ModelKind = "ae"
    """`ae`: deterministic auto-encoder; `vae`: β-VAE with a diagonal-Gaussian posterior."""
    beta: Annotated[float, Ge(0)] = 1.0
    """Weight of the KL term (VAE only); 0 turns the VAE into a noisy AE."""
    likelihood: Likelihood = "gaussian"
    """`gaussian`: sigmoid mean, fixed variance `sigma2`, loss = per-image SSE/(2σ²);
    `bernoulli`: per-image BCE from logits (for binarised data)."""
    sigma2: Annotated[float, Gt(0)] = 0.5
    """Decoder variance of the Gaussian likelihood; ½ makes SSE + KL the −ELBO up to (D/2)·log π."""
    binarize: Literal["none", "static", "dynamic"] = "none"
    """Pixel binarisation of the training data (`dynamic`: a new Bernoulli draw every epoch)."""
    dataset: Literal["mnist", "fashion-mnist", "idx"] = "mnist"
    """`mnist`, `fashion-mnist` or `idx` (with `data_dir`)."""
    data_dir: str | None = None
    """Folder of IDX files: a source for mnist/fashion-mnist, or the data of dataset `idx`."""
    latent_dim: Positive = 64
    """Size of the embedding z (nz)."""
    channels: Channels = field(default_factory=lambda: [32, 64, 128, 256])
    """Output channels of the four encoder convolutions (the decoder mirrors them)."""
    norm: bool = True
    """BatchNorm after every hidden convolution, as in the reference architecture."""
    epochs: Positive = 10
    """Passes over the training split."""
    batch_size: Positive = 64
    """Images per optimisation step."""
    lr: LearningRate = 1e-3
    """Adam learning rate; with a schedule, its peak."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """`constant` (the course); `cosine`: linear warm-up over `warmup_steps`, then a cosine decay
    from `lr` to `lr·min_lr_ratio` at the last step of `epochs`."""
    warmup_steps: Count = 0
    """Steps of linear learning-rate warm-up from lr/warmup_steps to lr (`cosine` only)."""
    min_lr_ratio: Fraction = 0.0
    """Final learning rate of the cosine decay, as a fraction of `lr`."""
    adam_beta1: Decay = 0.9
    """Adam's first-moment decay (PyTorch's default 0.9)."""
    adam_beta2: Decay = 0.999
    """Adam's second-moment decay (PyTorch's default 0.999)."""
    kl_warmup_steps: Count = 0
    """Linear KL warm-up: β·min(1, step/N); 0 disables it."""
    seed: Seed = 0
    """Seed of every random stream (weights, batch order, posterior noise); 0 to 2**32-1."""
    device: str = "auto"
    """`auto` (cuda, then mps, then cpu), `cpu`, `cuda`, `cuda:N` or `mps`."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """`bf16` uses autocast for the forward pass (for GPUs; on CPUs without native bf16 it is
    slower than fp32). Losses and evaluation are always fp32."""
    channels_last: bool = False
    """Train in the NHWC memory layout (`benchmarks/bench_step.py` measures it against NCHW on
    this machine). Off by default: on CPU it changes the weights' last bits."""
    compile: bool = False
    """Train through `torch.compile` (inductor; its cache under VAELAB_HOME/inductor is shared by
    runs). Off by default: the first run pays the compile cost (see vaelab.train.loop)."""
    limit_train: Positive | None = None
    """Train on the first N training images only (quick experiments, tests)."""
    limit_val: Positive | None = None
    """Validate on the first N validation images only."""
    log_every: Positive = 50
    """Steps between logged training metrics."""
    threads: Positive | None = None
    """torch intra-op threads, at most the cores available; None keeps PyTorch's default."""

    def validate(self) -> TrainConfig:
        """Check types, ranges and how fields relate; raise `ConfigError` naming the field, the
        reason and the fix. Numbers are stored as the file would read them back (floats)."""
        vars(self).update(vars(check(self, what="config field")))

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"invalid config field '{name}': {why}")

        if self.data_dir is not None and not self.data_dir.strip():
            raise bad("data_dir", "is empty; give a folder or leave it unset")
        if self.dataset == "idx" and not self.data_dir:
            raise bad("data_dir", "dataset 'idx' needs --data-dir DIR")
        if self.norm and self.batch_size < 2:
            raise bad(
                "batch_size",
                "BatchNorm cannot train on batches of one image; use >= 2 or --no-norm",
            )
        cores = available_cores()
        if self.threads is not None and self.threads > cores:
            # Refused, not clamped: oversubscribed threads ran ~30x slower, and config.json must
            # record what actually ran.
            raise bad(
                "threads", f"{self.threads} > the {cores} cores available here; use 1..{cores}"
            )
        if self.lr_schedule == "constant" and self.warmup_steps:
            raise bad("warmup_steps", "needs --lr-schedule cosine (the constant schedule has none)")
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise bad("device", f"{self.device!r} is not auto, cpu, cuda, cuda:N or mps")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """A config from TOML or config.json content, types and ranges checked."""
        return read(cls, values, source=source, what="config field")


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The content of a TOML file; a missing, unreadable, non-UTF-8 or invalid one is one line."""
    if not str(path).strip():
        raise ConfigError("--config is empty; give the path of a TOML file")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory; give the path of a TOML file")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {e.start}); save it as UTF-8 TOML"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} {path} is not valid TOML: {e}") from None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into a flat dict of `TrainConfig` fields ([train] table or top)."""
    data = read_toml(path)
    table = data.get("train", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: 'train' must be a table ([train]), not a value")
    return dict(table)


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---- evaluation -----------------------------------------------------------------------------
DEFAULT_PAIRS = ((5, 8), (4, 8), (1, 7))
# The metric groups, in the order they run; each is one function in vaelab.evaluate.metrics.
Group = Literal["reconstruction", "likelihood", "samples", "probes", "interpolation"]
GROUPS: tuple[Group, ...] = ("reconstruction", "likelihood", "samples", "probes", "interpolation")
# What a β-selection trial needs (reconstruction accuracy, sample FD and class entropy), without
# the IW-NLL, probes, interpolations or figures: EvalConfig(groups=SELECTION_GROUPS, figures=False).
SELECTION_GROUPS: tuple[Group, ...] = ("reconstruction", "samples")


@dataclass
class EvalConfig:
    """What `vaelab evaluate` computes for one run."""

    __pydantic_config__: ClassVar = CONFIG

    split: Literal["train", "val", "test"] = "test"
    """Split to evaluate on (probes always fit on `train` codes)."""
    groups: Annotated[list[Group], Len(1)] = field(default_factory=lambda: list(GROUPS))
    """Metric groups to compute (any of GROUPS); eval.json records which ran (`eval/group/…`)."""
    figures: bool = True
    """Write RUN_DIR/figures/*.png (independent of `groups`)."""
    iw_samples: Positive = 1000
    """K of the importance-weighted NLL (5000 to compare with published numbers)."""
    limit: Positive | None = None
    """Evaluate on the first N images of the split (default: all)."""
    iw_limit: Positive | None = None
    """IW-NLL on the first N of those images only (default: all of them)."""
    n_samples: Positive = 10_000
    """Prior samples for the Fréchet distance, precision/recall and class histogram."""
    pr_k: Positive = 3
    """k of the k-NN manifolds of precision and recall (Kynkäänniemi et al. use 3)."""
    probe_train: Positive | None = None
    """Training codes for the probes (default: the whole train split)."""
    pairs: tuple[tuple[int, int], ...] = DEFAULT_PAIRS
    """Label pairs (from, to) for interpolation."""
    n_pairs: Positive = 3
    """Image pairs per label pair."""
    steps: Positive = 5
    """Interpolated codes between the start and end image."""
    seed: Seed = 0
    checkpoint: Literal["best", "last"] = "best"
    classifier: Literal["standard", "smoke"] = "standard"
    """Reference classifier variant: `standard` (≥ 99 % on MNIST) or `smoke` (tests only)."""
    device: str = "auto"

    def __post_init__(self) -> None:
        # A list, whatever the caller passed: the study compares vars(EvalConfig) with the JSON
        # it saved, where a tuple would never equal the list read back.
        self.groups = list(self.groups)

    def validate(self) -> EvalConfig:
        vars(self).update(vars(check(self, what="evaluate option")))
        return self


# ---- the study ------------------------------------------------------------------------------
WHERE = {"unhashed": True}
"""Field metadata: where or how the study runs, not what a β-search trial computes."""
SETTING = {"unhashed": True, "setting": True}
"""Field metadata: unhashed, and β-search workers read it from the storage."""
Interval_s = Annotated[int, Interval(ge=1, le=86_400)]
"""Seconds between heartbeats, or until a silent worker counts as dead: at most a day (the
storage adds it to a timestamp)."""


@dataclass
class StudyConfig:
    """A study: its runs' shared TrainConfig fields (same names), their evaluations and the β
    search. Field metadata marks what does not change a β-search trial's result (`unhashed`)
    and what workers read from the search storage (`setting`)."""

    __pydantic_config__: ClassVar = CONFIG

    preset: Literal["default", "course", "smoke"] = field(default="default", metadata=SETTING)
    dataset: Literal["mnist", "fashion-mnist", "idx"] = "mnist"
    data_dir: str | None = field(default=None, metadata=WHERE)
    out: str = field(default="study", metadata=WHERE)
    device: str = field(default="auto", metadata=WHERE)
    seed: Seed = 0
    # --- training schedule -------------------------------------------------------------------
    limit_train: Positive | None = None
    """Training images per run (None: the whole 50,000-image train split)."""
    limit_val: Positive | None = None
    ae_epochs: Positive = 10
    extreme_epochs: Positive = 5
    """Epochs of the β = 0 and β = 10 experiments."""
    trial_epochs: Positive = 20
    """Epochs of each β-search trial."""
    batch_size: Positive = 64
    lr: LearningRate = 1e-3
    """Adam learning rate (the peak, with the cosine schedule)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: Count = 0
    trial_kl_warmup_steps: Count = 0
    """β ramps from 0 over this many steps in each β-search trial. Measured: with it, 195-step
    trials rank β as 2,000-step runs do; without it they under-rate larger β, which learn
    slowly at first. The AE, β = 0/10 and tuned runs train at constant β, as the course does."""
    latent_dim: Positive = 64
    channels: Channels = field(default_factory=lambda: [32, 64, 128, 256])
    # --- β search -------------------------------------------------------------------------------
    search: Literal["grid", "halving"] = "grid"
    """`grid`: every β trains `trial_epochs` on the whole train split (the course). `halving`:
    successive halving: rung 0 trains every β `trial_epochs` on `trial_limit_train` images, rung r
    η^r times as many epochs for the best ⌊n/η⌋ β of rung r−1, and the last rung trains the chosen
    β `tuned_epochs` on the whole train split."""
    trial_limit_train: Annotated[int, Ge(2)] | None = None
    """Training images of each rung-0 trial (halving; None: `limit_train`)."""
    halving_eta: Annotated[int, Ge(2)] = 3
    halving_rungs: Positive = 3
    """Rungs including the final full-budget run of the chosen β."""
    tuned_epochs: Positive = 20
    """Epochs of the chosen β's final run (halving)."""
    decades: Annotated[list[Annotated[float, Gt(0)]], Len(1)] = field(
        default_factory=lambda: [0.01, 0.1, 1.0, 10.0]
    )
    """First β grid, 10× apart; extended by a decade while the best β sits on an edge."""
    max_extensions: Count = 2
    refine: bool = True
    """Then try best·10^(−½) and best·10^(+½)."""
    min_recon_accuracy: Fraction = 0.9
    """Selection: the classifier must still recognise this share of reconstructions ..."""
    min_class_entropy: Annotated[float, Ge(0)] = 2.0
    """... and samples must cover the classes (entropy in nats; ln 10 ≈ 2.303 is uniform) ..."""
    # ... and among the β that pass both, the lowest sample Fréchet distance wins.
    # --- evaluation -----------------------------------------------------------------------------
    # Trials get the selection evaluation (what the choice needs: reconstruction accuracy and
    # rate/distortion, sample FD and class entropy); the AE, β = 0/10 and the tuned VAE get the
    # full one.
    trial_evaluation: Literal["selection", "full"] = "full"
    """Evaluation of grid-search trials (`full` in `course`, as vaelab 0.1 did); halving trials
    always get the selection evaluation."""
    selection_limit: Annotated[int, Ge(2)] = 2000
    """Test images of a trial's selection evaluation."""
    selection_samples: Annotated[int, Ge(2)] = 2000
    """Prior samples of a trial's selection evaluation (FD is biased by sample count: trials are
    compared with each other only, at equal count)."""
    eval_limit: Positive | None = None
    iw_samples: Positive = 1000
    iw_limit: Positive | None = 1000
    n_samples: Positive = 10_000
    probe_train: Positive | None = None
    classifier: Literal["standard", "smoke"] = "standard"
    # --- the β search's trial queue (an Optuna study; see vaelab.tune.search_queue) ------
    heartbeat_interval: Interval_s = field(default=10, metadata=SETTING)
    """Seconds between a running β-search trial's heartbeats in the study storage."""
    grace_period: Interval_s = field(default=60, metadata=SETTING)
    """Seconds without a heartbeat after which a trial's worker counts as dead: the trial is
    failed and queued again (it resumes from its checkpoint where its run directory is
    reachable)."""
    max_retry: Count = field(default=3, metadata=SETTING)
    """Retries of a trial whose worker died or was interrupted."""

    def validate(self) -> StudyConfig:
        """Check types, ranges and how fields relate; the per-run fields also go through
        TrainConfig's own checks (lr, channels, device, ...)."""
        vars(self).update(vars(check(self, what="study option")))
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"invalid study option 'grace_period': {self.grace_period!r} s must exceed "
                f"heartbeat_interval ({self.heartbeat_interval} s), or a live worker counts as dead"
            )
        self.train_config("vae", 1.0, 1, trial=True)
        return self

    def train_config(
        self,
        model: ModelKind,
        beta: float,
        epochs: int,
        limit_train: int | None = None,
        trial: bool = False,
    ) -> TrainConfig:
        """The validated config of one of this study's runs: the fields this config shares with
        TrainConfig by name; `trial`: a β-search trial, which trains with the preset's KL
        warm-up."""
        shared = {name: getattr(self, name) for name in shared_fields(self, TrainConfig)}
        return TrainConfig(
            **shared
            | dict(
                model=model,
                beta=beta,
                epochs=epochs,
                channels=list(self.channels),
                kl_warmup_steps=self.trial_kl_warmup_steps if trial else 0,
                limit_train=limit_train or self.limit_train,
                log_every=10,
            )
        ).validate()

    def eval_config(self, kind: Literal["full", "selection"]) -> EvalConfig:
        """`full`: every metric and figure; `selection`: what choosing β needs (reconstruction
        accuracy and rate/distortion, sample FD and class entropy) on fewer images/samples."""
        shared = {name: getattr(self, name) for name in shared_fields(self, EvalConfig)}
        if kind == "selection":
            return EvalConfig(
                **shared
                | dict(
                    groups=list(SELECTION_GROUPS),
                    figures=False,
                    limit=self.selection_limit,
                    n_samples=self.selection_samples,
                )
            )
        return EvalConfig(**shared | dict(limit=self.eval_limit))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def shared_fields(obj: object, cls: type) -> list[str]:
    """The fields of dataclass `obj` that `cls` also has, by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    return [f.name for f in dataclasses.fields(obj) if f.name in names]  # type: ignore[arg-type]


def marked(cls: type, mark: str) -> tuple[str, ...]:
    """The fields of dataclass `cls` whose metadata holds `mark`."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get(mark))


UNHASHED = marked(StudyConfig, "unhashed")
"""StudyConfig fields that do not change a β-search trial's result: where and how it runs."""
SETTINGS = marked(StudyConfig, "setting")
"""The unhashed StudyConfig fields β-search workers read from the storage."""
