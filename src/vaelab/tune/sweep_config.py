"""A sweep's typed `SweepConfig`: its TOML file (tables [sweep], [train], [space.FIELD],
[[objective]], [evaluation], [pruner]; docs/sweeps.md), read by the strict reader, and its
validation before the first trial."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Len

from vaelab.config import (
    CONFIG,
    Count,
    EvalConfig,
    Heartbeats,
    Positive,
    Seed,
    TrainConfig,
    read_toml,
)
from vaelab.errors import ConfigError
from vaelab.evaluate.keys import key_requirement
from vaelab.schema import check, read
from vaelab.tune.storage import Direction

ParamType = Literal["float", "int", "categorical", "grid"]
Choice = bool | int | float | str
"""What a categorical or grid parameter may take: the values Optuna stores."""


def config_error(where: str, why: str) -> ConfigError:
    """The one-line error for a bad part of a sweep file (`where` names the table or key)."""
    return ConfigError(f"invalid sweep config {where}: {why}")


@dataclass
class ParamSpec:
    """One searched TrainConfig field (a [space.NAME] table)."""

    type: ParamType
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list[Choice] = field(default_factory=list)
    """Values of a `categorical` (sampled) or `grid` (each tried in turn) parameter."""
    values: list[Choice] | None = None
    """Another name of `choices` (it reads better for grids); folded into it when read."""
    name: str = ""
    """The TrainConfig field: the table's name in the file."""


@dataclass
class Objective:
    key: str
    """An eval.json key of the trial's evaluation, e.g. `test/elbo` or `samples/fd`."""
    direction: Direction = "minimize"


@dataclass
class PrunerConfig:
    kind: Literal["none", "median", "successive_halving", "hyperband"] = "none"
    metric: Literal["val/loss", "val/recon", "val/kl"] = "val/loss"
    """Per-epoch validation metric reported to the pruner (lower is better). In a β sweep
    `val/recon` compares trials fairly: val/loss weighs the KL by each trial's own β."""
    n_startup_trials: Count = 2
    """median: trials that finish before any pruning."""
    n_warmup_steps: Count = 0
    """median: epochs of each trial never pruned."""
    min_resource: Positive = 1
    """successive_halving / hyperband: epochs before the first rung."""
    reduction_factor: Annotated[int, Ge(2)] = 3
    """successive_halving / hyperband: keep the best 1/factor at each rung."""


@dataclass
class SweepHead(Heartbeats):
    """The [sweep] table."""

    __pydantic_config__: ClassVar = CONFIG

    name: str | None = None
    """Study name in the storage (default: the TOML file's stem)."""
    trials: Positive | None = None
    """Finished (complete or pruned) trials wanted; `--trials` overrides it."""
    sampler: Literal["tpe", "random"] = "tpe"
    seed: Seed | None = None
    """Sampler seed: trial n draws with seed + n, so workers and re-runs never propose the same
    trials, and a one-worker sweep proposes the same ones every time."""


@dataclass
class SweepFile:
    """The file's tables, as written."""

    __pydantic_config__: ClassVar = CONFIG

    objective: Annotated[list[Objective], Len(1)]
    sweep: SweepHead = field(default_factory=SweepHead)
    train: dict[str, Any] = field(default_factory=dict)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)


@dataclass(kw_only=True)
class SweepConfig(SweepHead):
    """A sweep: the [sweep] settings, and the tables read into their types."""

    name: str
    train: dict[str, Any]
    """Base TrainConfig fields; each trial overrides the searched ones."""
    space: list[ParamSpec]
    objectives: Annotated[list[Objective], Len(1)]
    evaluation: dict[str, Any] = field(default_factory=dict)
    """EvalConfig fields (`figures` defaults to false; `device` follows the trial's)."""
    pruner: PrunerConfig = field(default_factory=PrunerConfig)

    @property
    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.choices for p in self.space if p.type == "grid"}

    @property
    def directions(self) -> list[Direction]:
        return [o.direction for o in self.objectives]

    @property
    def fixed_epochs(self) -> int | None:
        """The epochs of every trial (None: searched)."""
        if any(p.name == "epochs" for p in self.space):
            return None
        return self.train.get("epochs", TrainConfig().epochs)

    def definition(self) -> dict[str, Any]:
        """What fixes the meaning of a trial's result: parts a study must never change."""
        space = [{k: v for k, v in vars(p).items() if k != "values"} for p in self.space]
        return {
            "space": [{"name": p.pop("name"), **p} for p in space],
            "objectives": [dataclasses.asdict(o) for o in self.objectives],
            "train": self.train,
            "evaluation": self.evaluation,
        }

    def trial_config(self, params: dict[str, Any]) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, **params}, source="sweep trial").validate()

    def eval_config(self, device: str) -> EvalConfig:
        values = {"figures": False, **self.evaluation, "device": device}
        return read(EvalConfig, values, source="invalid sweep config [evaluation]", what="key")


# ---------------------------------------------------------------------------- reading
def load_sweep(path: str | Path, name: str | None = None) -> SweepConfig:
    """Read and fully validate a sweep TOML file; `name` overrides its [sweep] name."""
    return parse_sweep(read_toml(path, "sweep config"), default_name=Path(path).stem, name=name)


def parse_sweep(
    data: dict[str, Any], *, default_name: str = "sweep", name: str | None = None
) -> SweepConfig:
    if "objective" not in data:
        raise config_error(
            "[objective]",
            'missing; add e.g. [[objective]] key = "test/elbo" direction = "maximize"',
        )
    if isinstance(data["objective"], dict):  # one [objective] table
        data = {**data, "objective": [data["objective"]]}
    f = read(SweepFile, data, what="sweep config key")
    space = []
    for key, p in f.space.items():
        if p.values is not None and p.choices:
            raise config_error(f"[space.{key}]", "give `choices` or `values`, not both")
        space.append(dataclasses.replace(p, name=key, choices=p.values or p.choices, values=None))
    given = default_name if f.sweep.name is None else f.sweep.name
    head = {**vars(f.sweep), "name": name or given}
    tables = {k: getattr(f, k) for k in ("train", "evaluation", "pruner")}
    return validate(SweepConfig(**head, **tables, space=space, objectives=f.objective))


# ---------------------------------------------------------------------------- validation
def validate(cfg: SweepConfig) -> SweepConfig:
    """Check every part, including one trial config per grid corner, before any work starts."""
    cfg = check(cfg, what="sweep config key")  # types and ranges, for one built in Python
    if not cfg.name.strip():
        raise config_error("[sweep] name", "must be a non-empty string")
    if not cfg.space:
        raise config_error(
            "[space]", "no parameters; add e.g. [space.beta] type = 'float' low/high"
        )
    for p in cfg.space:
        _check_param(p)
        if p.name in cfg.train:
            raise config_error(
                f"[space.{p.name}]", f"'{p.name}' is also set in [train]; keep it in one place"
            )
    if cfg.grace_period <= cfg.heartbeat_interval:
        raise config_error(
            "[sweep] grace_period", "must exceed heartbeat_interval (a few intervals)"
        )
    if "device" in cfg.evaluation:
        raise config_error("[evaluation] device", "trials evaluate on [train] device; remove it")
    groups = cfg.eval_config("cpu").groups
    _check_pruner(cfg)
    # every combination of extreme values (choices, or low and high) must be valid; 256 are
    # enough to catch bad values
    options: list[list[Any]] = [p.choices or [p.low, p.high] for p in cfg.space]
    for combo in itertools.islice(itertools.product(*options), 256):
        corner = {p.name: value for p, value in zip(cfg.space, combo, strict=True)}
        try:
            train_cfg = cfg.trial_config(corner)
        except ConfigError as e:
            raise config_error(f"[train]/[space] at {corner}", str(e)) from None
        _check_objectives(cfg, train_cfg, groups)
    return cfg


def _check_param(p: ParamSpec) -> None:
    where = f"[space.{p.name}]"
    if p.type in ("categorical", "grid"):
        if not p.choices:
            raise config_error(where, f"a {p.type} parameter needs a non-empty list `choices`")
        if len({json.dumps(c) for c in p.choices}) != len(p.choices):
            raise config_error(where, f"duplicate choices in {p.choices}")
        if p.low is not None or p.high is not None or p.log or p.step is not None:
            raise config_error(where, f"a {p.type} parameter takes only `choices`")
        return
    if p.choices:
        raise config_error(where, f"a {p.type} parameter takes low/high, not choices")
    if p.low is None or p.high is None or not p.low < p.high:
        raise config_error(where, f"needs numbers low < high, got low={p.low!r} high={p.high!r}")
    if p.type == "int" and not (isinstance(p.low, int) and isinstance(p.high, int)):
        raise config_error(where, "an int parameter needs integer low and high")
    if p.log and p.low <= 0:
        raise config_error(where, f"log scale needs low > 0, got {p.low!r}")
    if p.step is not None:
        if p.step <= 0:
            raise config_error(where, f"step must be a number > 0, got {p.step!r}")
        if p.log:
            raise config_error(where, "step and log = true cannot be combined (Optuna refuses it)")
        if p.type == "int" and not isinstance(p.step, int):
            raise config_error(where, "an int parameter needs an integer step")


def _check_objectives(cfg: SweepConfig, train_cfg: TrainConfig, groups: Sequence[str]) -> None:
    split = cfg.evaluation.get("split", "test")
    for o in cfg.objectives:
        need = key_requirement(o.key, split)
        group = (need or "").removeprefix("vae").removeprefix("+")
        if need is None:
            hint = f"'{o.key}' is not an eval.json key of split '{split}'"
        elif need.startswith("vae") and train_cfg.model != "vae":
            hint = f"'{o.key}' exists only for VAE runs, and model={train_cfg.model!r} here"
        elif group not in ("", *groups):
            hint = f"'{o.key}' needs the '{group}' group in [evaluation] groups"
        else:
            continue
        raise config_error("[objective] key", f"{hint}; see the README's evaluate section")
    if len({o.key for o in cfg.objectives}) != len(cfg.objectives):
        raise config_error("[objective]", "the same key twice")


def _check_pruner(cfg: SweepConfig) -> None:
    p, epochs = cfg.pruner, cfg.fixed_epochs
    rungs = p.kind in ("successive_halving", "hyperband")
    if rungs and epochs is not None and p.min_resource >= epochs:
        raise config_error(
            "[pruner] min_resource",
            f"{p.min_resource} epochs leaves no rung before the last epoch ({epochs}); "
            "lower it or train more epochs",
        )
    if p.kind != "none" and len(cfg.objectives) > 1:
        raise config_error(
            "[pruner]",
            "Optuna cannot prune multi-objective studies; set kind = 'none' or keep one objective",
        )
