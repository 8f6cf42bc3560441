"""A sweep's typed `SweepConfig`, and its validation before the first trial. The TOML file
(read by `vaelab.tune.sweep_parse`):

    [sweep]                       # optional: name, trials, sampler, seed, heartbeat
    name = "beta"
    trials = 8
    [train]                       # base TrainConfig: any field
    model = "vae"
    epochs = 1
    [space.beta]                  # one table per searched TrainConfig field
    type = "float"                # float | int | categorical | grid
    low = 0.01
    high = 10.0
    log = true
    [[objective]]                 # one or several (multi-objective); any eval.json key
    key = "test/elbo"
    direction = "maximize"
    [evaluation]                  # a subset of EvalConfig
    limit = 128
    [pruner]
    kind = "median"               # none | median | successive_halving | hyperband

`grid` parameters are tried value by value: every trial takes the least-tried point of the
product of all grid parameters, so N trials cover an n-point grid N/n times each (a pure grid with
no `trials` runs it once); the other parameters are sampled.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vaelab.config import TrainConfig
from vaelab.errors import ConfigError
from vaelab.evaluate.keys import key_requirement
from vaelab.fsutil import json_sha256
from vaelab.tune.storage import Direction

if TYPE_CHECKING:
    from vaelab.evaluate import EvalConfig

ParamType = Literal["float", "int", "categorical", "grid"]
PrunerKind = Literal["none", "median", "successive_halving", "hyperband"]

# EvalConfig fields a sweep may set; `device` follows the trial's TrainConfig.device.
EVAL_FIELDS = (
    "split",
    "iw_samples",
    "limit",
    "iw_limit",
    "n_samples",
    "probe_train",
    "n_pairs",
    "steps",
    "seed",
    "checkpoint",
    "classifier",
    "figures",
    "groups",
)


def config_error(where: str, why: str) -> ConfigError:
    """The one-line error for a bad part of a sweep file (`where` names the table or key)."""
    return ConfigError(f"invalid sweep config {where}: {why}")


def check_keys(table: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise config_error(
            where, f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(allowed)}"
        )


@dataclass
class ParamSpec:
    """One searched TrainConfig field."""

    name: str
    type: ParamType
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] = field(default_factory=list)
    """Values of a `categorical` (sampled) or `grid` (each tried in turn) parameter."""


@dataclass
class Objective:
    key: str
    """An eval.json key of the trial's evaluation, e.g. `test/elbo` or `samples/fd`."""
    direction: Direction = "minimize"


PRUNER_METRICS = ("val/loss", "val/recon", "val/kl")


@dataclass
class PrunerConfig:
    kind: PrunerKind = "none"
    metric: str = "val/loss"
    """Per-epoch validation metric reported to the pruner (lower is better). In a β sweep
    `val/recon` compares trials fairly: val/loss weighs the KL by each trial's own β."""
    n_startup_trials: int = 2
    """median: trials that finish before any pruning."""
    n_warmup_steps: int = 0
    """median: epochs of each trial never pruned."""
    min_resource: int = 1
    """successive_halving / hyperband: epochs before the first rung."""
    reduction_factor: int = 3
    """successive_halving / hyperband: keep the best 1/factor at each rung."""


@dataclass
class SweepConfig:
    name: str
    """Study name in the storage (default: the TOML file's stem)."""
    train: dict[str, Any]
    """Base TrainConfig fields; each trial overrides the searched ones."""
    space: list[ParamSpec]
    objectives: list[Objective]
    evaluation: dict[str, Any] = field(default_factory=dict)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    trials: int | None = None
    """Finished (complete or pruned) trials wanted; `--trials` overrides it."""
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = None
    """Sampler seed: trial n draws with seed + n, so workers and re-runs never propose the same
    trials, and a one-worker sweep proposes the same ones every time."""
    heartbeat_interval: int = 10
    """Seconds between a running trial's heartbeats in the storage."""
    grace_period: int = 60
    """Seconds without a heartbeat after which a trial is failed and retried."""
    max_retry: int = 3
    """Retries of a trial whose worker died (heartbeat lost) or was interrupted."""

    # ------------------------------------------------------------------ derived views
    @property
    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.choices for p in self.space if p.type == "grid"}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) if self.grid else 0

    @property
    def directions(self) -> list[Direction]:
        return [o.direction for o in self.objectives]

    def definition(self) -> dict[str, Any]:
        """What fixes the meaning of a trial's result: parts a study must never change."""
        return {
            "space": [dataclasses.asdict(p) for p in self.space],
            "objectives": [dataclasses.asdict(o) for o in self.objectives],
            "train": self.train,
            "evaluation": self.evaluation,
        }

    def definition_hashes(self) -> dict[str, str]:
        return {part: json_sha256(v)[:16] for part, v in self.definition().items()}

    def trial_config(self, params: dict[str, Any]) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, **params}, source="sweep trial").validate()

    def eval_config(self, device: str) -> EvalConfig:
        from vaelab.evaluate import EvalConfig  # imports torch: only when a trial needs it

        values = {"figures": False, **self.evaluation, "device": device}
        if "groups" in values:
            values["groups"] = tuple(values["groups"])
        return EvalConfig(**values).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- validation
def validate(cfg: SweepConfig) -> SweepConfig:
    """Check every part, including one trial config per grid corner, before any work starts."""
    if not isinstance(cfg.name, str) or not cfg.name.strip():
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
    for name in ("trials", "heartbeat_interval", "grace_period"):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise config_error(f"[sweep] {name}", f"must be an integer >= 1, got {v!r}")
    if cfg.grace_period <= cfg.heartbeat_interval:
        raise config_error(
            "[sweep] grace_period", "must exceed heartbeat_interval (a few intervals)"
        )
    if not isinstance(cfg.max_retry, int) or cfg.max_retry < 0:
        raise config_error("[sweep] max_retry", f"must be an integer >= 0, got {cfg.max_retry!r}")
    if cfg.sampler not in ("tpe", "random"):
        raise config_error("[sweep] sampler", f"{cfg.sampler!r} is not one of tpe, random")
    if cfg.seed is not None and not isinstance(cfg.seed, int):
        raise config_error("[sweep] seed", f"must be an integer, got {cfg.seed!r}")
    groups = _check_evaluation(cfg)
    _check_pruner(cfg)
    for corner in _corners(cfg.space):  # every combination of extreme values must be valid
        try:
            train_cfg = cfg.trial_config(corner)
        except (ConfigError, TypeError) as e:
            raise config_error(f"[train]/[space] at {corner}", str(e)) from None
        _check_objectives(cfg, train_cfg, groups)
    return cfg


def _check_evaluation(cfg: SweepConfig) -> tuple[str, ...]:
    """Check [evaluation]; returns the metric groups it computes."""
    from vaelab.evaluate.run import GROUPS

    check_keys(cfg.evaluation, "[evaluation]", EVAL_FIELDS)
    groups = cfg.evaluation.get("groups", GROUPS)
    if not isinstance(groups, (list, tuple)) or not set(groups) <= set(GROUPS):
        raise config_error("[evaluation] groups", f"{groups!r}: a list from {', '.join(GROUPS)}")
    try:
        ecfg = cfg.eval_config("cpu")
    except (ConfigError, TypeError) as e:
        raise config_error("[evaluation]", str(e)) from None
    if ecfg.classifier not in ("standard", "smoke"):
        raise config_error(
            "[evaluation] classifier", f"{ecfg.classifier!r} is not standard or smoke"
        )
    if ecfg.split not in ("train", "val", "test"):
        raise config_error("[evaluation] split", f"{ecfg.split!r} is not train, val or test")
    return tuple(groups)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_param(p: ParamSpec) -> None:
    where = f"[space.{p.name}]"
    if p.type in ("categorical", "grid"):
        if not isinstance(p.choices, list) or not p.choices:
            raise config_error(where, f"a {p.type} parameter needs a non-empty list `choices`")
        if any(not isinstance(c, (bool, int, float, str)) for c in p.choices):
            raise config_error(
                where, "choices must be numbers, strings or booleans (Optuna stores these)"
            )
        if len({json.dumps(c) for c in p.choices}) != len(p.choices):
            raise config_error(where, f"duplicate choices in {p.choices}")
        if p.low is not None or p.high is not None or p.log or p.step is not None:
            raise config_error(where, f"a {p.type} parameter takes only `choices`")
        return
    if p.choices:
        raise config_error(where, f"a {p.type} parameter takes low/high, not choices")
    if not (_num(p.low) and _num(p.high)) or not p.low < p.high:  # type: ignore[operator]
        raise config_error(where, f"needs numbers low < high, got low={p.low!r} high={p.high!r}")
    if p.type == "int" and not (isinstance(p.low, int) and isinstance(p.high, int)):
        raise config_error(where, "an int parameter needs integer low and high")
    if p.log and p.low <= 0:  # type: ignore[operator]
        raise config_error(where, f"log scale needs low > 0, got {p.low!r}")
    if p.step is not None:
        if not _num(p.step) or p.step <= 0:
            raise config_error(where, f"step must be a number > 0, got {p.step!r}")
        if p.log:
            raise config_error(where, "step and log = true cannot be combined (Optuna refuses it)")
        if p.type == "int" and not isinstance(p.step, int):
            raise config_error(where, "an int parameter needs an integer step")


def _corners(space: list[ParamSpec]) -> list[dict[str, Any]]:
    options = []
    for p in space:
        options.append(p.choices if p.type in ("categorical", "grid") else [p.low, p.high])
    names = [p.name for p in space]
    combos = itertools.islice(itertools.product(*options), 256)  # enough to catch bad values
    return [dict(zip(names, c, strict=True)) for c in combos]


def _check_objectives(cfg: SweepConfig, train_cfg: TrainConfig, groups: tuple[str, ...]) -> None:
    split = cfg.evaluation.get("split", "test")
    for o in cfg.objectives:
        if o.direction not in ("minimize", "maximize"):
            raise config_error(
                f"[objective] {o.key}", f"direction {o.direction!r}: minimize or maximize"
            )
        need = key_requirement(o.key, split) if isinstance(o.key, str) else None
        if need is None:
            hint = f"'{o.key}' is not an eval.json key of split '{split}'"
        elif need.startswith("vae") and train_cfg.model != "vae":
            hint = f"'{o.key}' exists only for VAE runs, and model={train_cfg.model!r} here"
        elif need.removeprefix("vae").removeprefix("+") not in ("", *groups):
            group = need.removeprefix("vae").removeprefix("+")
            hint = f"'{o.key}' needs the '{group}' group in [evaluation] groups"
        else:
            continue
        raise config_error("[objective] key", f"{hint}; see the README's evaluate section")
    if len({o.key for o in cfg.objectives}) != len(cfg.objectives):
        raise config_error("[objective]", "the same key twice")


def _check_pruner(cfg: SweepConfig) -> None:
    p = cfg.pruner
    if p.kind not in ("none", "median", "successive_halving", "hyperband"):
        raise config_error(
            "[pruner] kind",
            f"{p.kind!r} is not one of none, median, successive_halving, hyperband",
        )
    for name in ("n_startup_trials", "n_warmup_steps"):
        v = getattr(p, name)
        if not isinstance(v, int) or v < 0:
            raise config_error(f"[pruner] {name}", f"must be an integer >= 0, got {v!r}")
    for name, lo in (("min_resource", 1), ("reduction_factor", 2)):
        v = getattr(p, name)
        if not isinstance(v, int) or v < lo:
            raise config_error(f"[pruner] {name}", f"must be an integer >= {lo}, got {v!r}")
    if p.metric not in PRUNER_METRICS:
        raise config_error(
            "[pruner] metric", f"{p.metric!r} is not one of {', '.join(PRUNER_METRICS)}"
        )
    epochs = cfg.train.get("epochs", TrainConfig().epochs)
    searched = {s.name for s in cfg.space}
    rungs = p.kind in ("successive_halving", "hyperband") and "epochs" not in searched
    if rungs and p.min_resource >= epochs:
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
