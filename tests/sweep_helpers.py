"""Sweep configs for the tests: the shipped smoke example, modified, written as TOML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

SMOKE = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "smoke.toml"


def smoke(**tables: dict[str, Any]) -> dict[str, Any]:
    """The smoke sweep with some tables' keys replaced (None deletes a key; `space` and
    `objective` are replaced whole)."""
    data = tomllib.loads(SMOKE.read_text())
    for table, values in tables.items():
        if table in ("space", "objective"):
            data[table] = values
            continue
        body = data.setdefault(table, {})
        body.update(values)
        for k in [k for k, v in values.items() if v is None]:
            del body[k]
    return data


def _value(v: Any) -> str:
    return json.dumps(v)  # numbers, strings, booleans and flat lists read the same in TOML


def to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, body in data.items():
        if table == "objective":
            for item in body if isinstance(body, list) else [body]:
                lines.append("[[objective]]")
                lines += [f"{k} = {_value(v)}" for k, v in item.items()]
        elif table == "space":
            for name, spec in body.items():
                lines.append(f"[space.{name}]")
                lines += [f"{k} = {_value(v)}" for k, v in spec.items()]
        else:
            lines.append(f"[{table}]")
            lines += [f"{k} = {_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(to_toml(data))
    return path


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vaelab", "sweep", *map(str, args)]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        sweep_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout
    )


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        sweep_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
