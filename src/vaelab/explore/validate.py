"""Checks on untrusted request data. Every failure is an `ApiError`: a 4xx status and one sentence
naming the field, what was wrong and what is accepted."""

from __future__ import annotations

import json
import math
from typing import Any

import torch

MAX_BODY_BYTES = 64 * 1024  # a 28×28×3 image as JSON floats is ~30 KB; nothing needs more
MAX_SAMPLES = 64
MAX_STEPS = 32
MAX_ABS_VALUE = 1e4  # latent values and map coordinates: far outside any trained code, still sane


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ApiError(400, f"request body is not valid JSON: {name} is not a JSON number")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; NaN/Infinity literals (which Python's json accepts) rejected."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ApiError(400, f"request body is not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def check_fields(
    body: dict[str, Any], required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> None:
    missing = sorted(required - body.keys())
    if missing:
        raise ApiError(400, f"missing field(s) {', '.join(missing)}")
    unknown = sorted(body.keys() - required - optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; accepted: {allowed}")


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)  # query strings carry text
        else:
            raise ApiError(400, f"'{name}' must be an integer in [{lo}, {hi}], got {value!r:.40}")
    if not lo <= value <= hi:
        raise ApiError(400, f"'{name}' must be in [{lo}, {hi}], got {value}")
    return value


def vector(
    value: Any, name: str, length: int, lo: float = -MAX_ABS_VALUE, hi: float = MAX_ABS_VALUE
) -> torch.Tensor:
    """A list of `length` finite numbers in [lo, hi] → float64 tensor (length,)."""
    if not isinstance(value, list):
        raise ApiError(400, f"'{name}' must be a list of {length} numbers")
    if len(value) != length:
        raise ApiError(400, f"'{name}' must have {length} numbers, got {len(value)}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ApiError(400, f"'{name}[{i}]' must be a number, got {v!r:.40}")
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ApiError(
                400, f"'{name}[{i}]' must be a finite number in [{lo:g}, {hi:g}], got {v}"
            )
    return torch.tensor(value, dtype=torch.float64)


def image(value: Any, name: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """A flat list of C·H·W pixel values in [0, 1] (row-major, channel first) → (1, C, H, W)."""
    c, h, w = shape
    n = c * h * w
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
        raise ApiError(
            400, f"'{name}' must be a flat list of {n} numbers in [0, 1] ({c}×{h}×{w}), got {got}"
        )
    return vector(value, name, n, 0.0, 1.0).float().view(1, c, h, w)
