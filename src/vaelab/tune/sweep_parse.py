"""Reading a sweep's TOML file (format: `vaelab.tune.sweep_config`) into a `SweepConfig`."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError
from vaelab.tune.sweep_config import (
    Objective,
    ParamSpec,
    PrunerConfig,
    SweepConfig,
    check_keys,
    config_error,
    validate,
)

TOP_TABLES = ("sweep", "train", "space", "objective", "evaluation", "pruner")


def load_sweep(path: str | Path, name: str | None = None) -> SweepConfig:
    """Read and fully validate a sweep TOML file (format: the `vaelab.tune.sweep_config` docstring);
    `name` overrides its [sweep] name."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"sweep config {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep config {path} is not valid TOML: {e}") from None
    return parse_sweep(data, default_name=path.stem, name=name)


def parse_sweep(
    data: dict[str, Any], *, default_name: str = "sweep", name: str | None = None
) -> SweepConfig:
    unknown = sorted(set(data) - set(TOP_TABLES))
    if unknown:
        raise config_error(
            "tables",
            f"unknown table(s) {', '.join(unknown)}; valid: {', '.join(TOP_TABLES)}",
        )
    head = _table(data, "sweep")
    check_keys(head, "[sweep]", SWEEP_KEYS)
    cfg = SweepConfig(
        name=name or head.get("name", default_name),
        train=_table(data, "train"),
        space=[_param(k, v) for k, v in _table(data, "space").items()],
        objectives=_objectives(data.get("objective")),
        evaluation=_table(data, "evaluation"),
        pruner=_pruner(_table(data, "pruner")),
        **{k: head[k] for k in SWEEP_KEYS if k in head and k != "name"},
    )
    return validate(cfg)


SWEEP_KEYS = (
    "name",
    "trials",
    "sampler",
    "seed",
    "heartbeat_interval",
    "grace_period",
    "max_retry",
)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise config_error(f"[{key}]", f"must be a table, got {type(value).__name__}")
    return dict(value)


def _param(name: str, spec: Any) -> ParamSpec:
    where = f"[space.{name}]"
    if not isinstance(spec, dict):
        raise config_error(where, 'must be a table such as {type = "float", low = 0.1, high = 10}')
    check_keys(spec, where, ("type", "low", "high", "log", "step", "choices", "values"))
    spec = dict(spec)
    if "values" in spec:  # `values` reads better for grids; same meaning as `choices`
        if "choices" in spec:
            raise config_error(where, "give `choices` or `values`, not both")
        spec["choices"] = spec.pop("values")
    kind = spec.get("type")
    if kind not in ("float", "int", "categorical", "grid"):
        raise config_error(f"{where} type", f"{kind!r} is not one of float, int, categorical, grid")
    return ParamSpec(name=name, **spec)


def _objectives(raw: Any) -> list[Objective]:
    if raw is None:
        raise config_error(
            "[objective]",
            'missing; add e.g. [[objective]] key = "test/elbo" direction = "maximize"',
        )
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise config_error(
            "[objective]", "must be a table or an array of tables with key and direction"
        )
    out = []
    for item in items:
        check_keys(item, "[objective]", ("key", "direction"))
        out.append(Objective(**item))
    return out


def _pruner(table: dict[str, Any]) -> PrunerConfig:
    names = tuple(f.name for f in dataclasses.fields(PrunerConfig))
    check_keys(table, "[pruner]", names)
    return PrunerConfig(**table)
