"""Typed, validated configuration: `TrainConfig` (a training run), `EvalConfig` (an evaluation)
and `StudyConfig` (the study, composing the two). The CLI and TOML files only fill these in;
ranges are in the annotations, checked with the types by the strict reader (vaelab.schema), and
`validate()` adds the checks that relate fields. Each run saves its config as `config.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, partial
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_type_hints

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
    dataset: Literal["mnist", "fashion-mnist", "idx", "folder"] = "mnist"
    """`mnist`, `fashion-mnist`, `idx` or `folder` (pictures; both with `data_dir`)."""
    data_dir: str | None = None
    """Folder of IDX files (a source for mnist/fashion-mnist, or the data of dataset `idx`) or
    of pictures (dataset `folder`)."""
    image_size: Literal[28, 32, 64] | None = None
    """Dataset `folder`: resize the shorter side to this and centre-crop (None: the pictures'
    own size, when they share one of 28, 32, 64)."""
    color: Literal["grey", "rgb"] | None = None
    """Dataset `folder`: pictures as grey or RGB (None: RGB when any picture has colour)."""
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
    lr: Annotated[float, Interval(gt=0, lt=10)] = 1e-3
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
    this machine). Off by default: on CPU it changes the weights' last bits (the `default` study
    preset turns it on: 1.12–1.24× the steps/s of NCHW for the reference VAE on a 2-core CPU)."""
    fused_adam: bool = False
    """Adam's fused kernel: one pass over all parameters per step instead of a pass per operation
    (1.05–1.14× the steps/s of the default foreach kernel for the reference VAE on a 2-core
    CPU). Off by default: it changes the weights' last bits (the `default` study turns it on)."""
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
        """Check types, ranges and how fields relate (one `ConfigError` line naming the field and
        the fix); numbers are stored as the file would read them back (floats)."""
        vars(self).update(vars(check(self, what="config field")))

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"invalid config field '{name}': {why}")

        if self.data_dir is not None and not self.data_dir.strip():
            raise bad("data_dir", "is empty; give a folder or leave it unset")
        if self.dataset in ("idx", "folder") and not self.data_dir:
            raise bad("data_dir", f"dataset '{self.dataset}' needs --data-dir DIR")
        if self.dataset != "folder" and (self.image_size or self.color):
            raise bad("image_size" if self.image_size else "color", "applies to --dataset folder")
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

    @property
    def data_args(self) -> tuple[str, str | None, int | None, str | None]:
        """(dataset, data_dir, image_size, color): the data's arguments to vaelab.data's loaders."""
        return self.dataset, self.data_dir, self.image_size, self.color

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
# What a β-selection trial needs: reconstruction accuracy, sample FD and class entropy.
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
Interval_s = Annotated[int, Interval(ge=1, le=86_400)]
"""Seconds between heartbeats, or until a silent worker counts as dead: at most a day (the
storage adds it to a timestamp)."""


@dataclass
class Heartbeats:
    """How the workers of an Optuna study (a sweep, the study's β search) watch each other."""

    heartbeat_interval: Interval_s = 10
    """Seconds between a running trial's heartbeats in the storage."""
    grace_period: Interval_s = 60
    """Seconds without a heartbeat after which a trial's worker counts as dead: the trial is
    failed and queued again."""
    max_retry: Count = 3
    """Retries of a trial whose worker died or was interrupted."""


@dataclass
class StudyConfig(Heartbeats):
    """A study: the TrainConfig and EvalConfig its runs share, each stage's budget and the β
    search. Its record (flags, presets, study.json, the β search's definition) is the flat
    `OPTIONS`; train/eval fields outside it keep the defaults below."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(log_every=10))
    """Every run's config, but for the model, β, epochs and KL warm-up of each stage."""
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(iw_limit=1000))
    """The full evaluation; its device and seed are the runs' (`train`)."""
    preset: Literal["default", "course", "smoke"] = "default"
    out: str = "study"
    ae_epochs: Positive = 10
    extreme_epochs: Positive = 5
    """Epochs of the β = 0 and β = 10 experiments."""
    trial_epochs: Positive = 20
    """Epochs of each β-search trial."""
    trial_kl_warmup_steps: Count = 0
    """β ramps from 0 over this many steps in each β-search trial only: measured, 195-step trials
    then rank β as 2,000-step runs do (without it they under-rate larger β, slow starters)."""
    search: Literal["grid", "halving"] = "grid"
    """`grid`: every β trains `trial_epochs` on the whole train split (the course); `halving`:
    successive halving (vaelab.tune.halving), the chosen β then trains `tuned_epochs`."""
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
    trial_evaluation: Literal["selection", "full"] = "full"
    """Evaluation of grid-search trials (`full` in `course`, as vaelab 0.1 did); halving trials
    always get the selection evaluation."""
    selection_limit: Annotated[int, Ge(2)] = 2000
    """Test images of a trial's selection evaluation."""
    selection_samples: Annotated[int, Ge(2)] = 2000
    """Prior samples of a trial's selection evaluation (FD depends on the count: trials are
    compared with each other only)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Read (study.json, a worker's storage) from the flat record."""
        from pydantic_core import core_schema

        flat = handler.generate_schema(options_class())
        return core_schema.no_info_after_validator_function(lambda o: cls._nest(vars(o)), flat)

    @classmethod
    def from_options(cls, values: dict[str, Any], **kw: Any) -> StudyConfig:
        """The study of a flat record, types and ranges checked (`kw`: `schema.read`'s)."""
        return cls._nest(vars(read(options_class(), values, **{"what": "study option", **kw})))

    @classmethod
    def _nest(cls, values: Any) -> StudyConfig:
        cfg = cls()
        for name, value in values.items():
            owner, _, attr = OPTIONS[name].rpartition(".")
            setattr(getattr(cfg, owner) if owner else cfg, attr, value)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The flat record: `OPTIONS`' names and values."""
        return copy.deepcopy({name: attrgetter(path)(self) for name, path in OPTIONS.items()})

    def validate(self) -> StudyConfig:
        """Check types, ranges and how fields relate, the runs' TrainConfig checks included."""
        checked = StudyConfig.from_options(self.to_dict())
        # what the flat record cannot hold would be lost in study.json and the β search's hash
        lost = [
            f"{part}.{name}"
            for part in ("train", "eval")
            for name, value in vars(getattr(self, part)).items()
            if value != getattr(getattr(checked, part), name)
        ]
        if lost:
            raise ConfigError(
                f"invalid study option(s) {', '.join(lost)}: not study options (OPTIONS); "
                "leave them at the study's defaults"
            )
        vars(self).update(vars(checked))
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"invalid study option 'grace_period': {self.grace_period!r} s must exceed "
                f"heartbeat_interval ({self.heartbeat_interval} s), or a live worker counts as dead"
            )
        self.run_config("vae", 1.0, 1, trial=True)
        return self

    def run_config(
        self, model: ModelKind, beta: float, epochs: int, trial: bool = False, **changes: Any
    ) -> TrainConfig:
        """The validated config of one of this study's runs; `trial`: a β-search trial, which
        trains with the preset's KL warm-up."""
        warmup = self.trial_kl_warmup_steps if trial else 0
        run: dict[str, Any] = {"model": model, "beta": beta, "epochs": epochs}
        return dataclasses.replace(self.train, **run, kl_warmup_steps=warmup, **changes).validate()

    def eval_config(self, kind: Literal["full", "selection"]) -> EvalConfig:
        """`full`: every metric and figure; `selection`: what choosing β needs (reconstruction
        accuracy and rate/distortion, sample FD and class entropy) on fewer images/samples."""
        full = dataclasses.replace(self.eval, device=self.train.device, seed=self.train.seed)
        if kind == "full":
            return full
        return dataclasses.replace(
            full,
            groups=list(SELECTION_GROUPS),
            figures=False,
            limit=self.selection_limit,
            n_samples=self.selection_samples,
        )


# The flat record: a name per field path, in the order of vaelab 0.2's flat StudyConfig; the
# name is the field's own, but `eval_limit` (eval.limit).
OPTIONS = {
    ("eval_limit" if path == "eval.limit" else path.rpartition(".")[2]): path
    for path in (  # noqa: SIM905 (a table to read, not a list to scan)
        "preset train.dataset train.data_dir train.image_size train.color out train.device "
        "train.seed train.limit_train train.limit_val ae_epochs extreme_epochs trial_epochs "
        "train.batch_size train.lr train.lr_schedule train.warmup_steps trial_kl_warmup_steps "
        "train.latent_dim train.channels train.channels_last train.fused_adam search "
        "trial_limit_train halving_eta halving_rungs tuned_epochs decades max_extensions refine "
        "min_recon_accuracy min_class_entropy trial_evaluation selection_limit selection_samples "
        "eval.limit eval.iw_samples eval.iw_limit eval.n_samples eval.probe_train eval.classifier "
        "heartbeat_interval grace_period max_retry"
    ).split()
}
SETTINGS = ("preset", "heartbeat_interval", "grace_period", "max_retry")
"""Options β-search workers read from the storage, beside the definition."""
UNHASHED = ("data_dir", "out", "device", *SETTINGS)
"""Options that do not change a β-search trial's result: where and how it runs."""


@cache
def options_class() -> type[Any]:
    """The flat record as a dataclass for the strict reader: each option typed as its field."""
    owners = {"train": TrainConfig, "eval": EvalConfig, "": StudyConfig}
    hints = {k: get_type_hints(c, include_extras=True) for k, c in owners.items()}
    default = StudyConfig().to_dict()
    fields = []
    for name, path in OPTIONS.items():
        owner, _, attr = path.rpartition(".")
        value = field(default_factory=partial(copy.deepcopy, default[name]))
        fields.append((name, hints[owner][attr], value))
    return dataclasses.make_dataclass(
        "StudyOptions", fields, namespace={"__pydantic_config__": CONFIG}
    )
