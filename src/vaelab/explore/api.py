"""The JSON API (routes and fields: docs/explorer.md): a table of routes, each checking its
untrusted request before touching a model. Every refusal is an `ApiError`: a 4xx status and one
sentence naming the field, what was wrong and what is accepted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any, NamedTuple

import torch

from vaelab.explore.session import Explorer

MAX_BODY_BYTES = 64 * 1024  # a 28×28×3 image as JSON floats is ~30 KB; nothing needs more
MAX_DEPTH = 8  # the deepest request, {"a": {"image": [...]}}, nests three levels
MAX_DIGITS = 18  # an integer literal longer than this is no index, count or seed
MAX_SAMPLES = 64
MAX_STEPS = 32
MAX_ABS_VALUE = 1e4  # latent values and map coordinates: far outside any trained code, still sane
# A JSON string, or an unterminated one up to the end: linear, whatever the body holds.
STRINGS = re.compile(r'(?s)"(?:[^"\\]|\\.?)*+(?:"|\Z)')
DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")

Handler = Callable[[Explorer, dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _integer_literal(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ApiError(
            400, f"request body holds a {len(text.lstrip('-'))}-digit integer; no field takes one"
        )
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ApiError(400, f"request body is not valid JSON: {name} is not a JSON number")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object: UTF-8, nested at most MAX_DEPTH deep (before the recursive
    parser sees it), integers of at most MAX_DIGITS digits, no NaN/Infinity (which Python's json
    accepts). Floats beyond float range become inf, which `vector` refuses."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8 text") from None
    brackets = re.findall(r"[\[\]{}]", STRINGS.sub("", text))
    if max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0) > MAX_DEPTH:
        raise ApiError(400, f"request body nests deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(text, parse_int=_integer_literal, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"request body is not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
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
                400, f"'{name}[{i}]' must be a finite number in [{lo:g}, {hi:g}], got {v:.6g}"
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


def _index(ex: Explorer, value: Any, name: str) -> int:
    return integer(value, name, 0, len(ex.images) - 1)


def _code(ex: Explorer, run: int, value: Any, name: str) -> torch.Tensor:
    return vector(value, name, ex.runs[run].model.latent_dim)


def endpoint(ex: Explorer, run: int, value: Any, name: str) -> torch.Tensor:
    """An interpolation end given as a test image, a map point, a code or an image → code (nz,)."""
    kinds = ("index", "point", "code", "image")
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in kinds:
        raise ApiError(400, f"'{name}' must be an object with exactly one of {', '.join(kinds)}")
    kind, v = next(iter(value.items()))
    if kind == "index":
        return ex.runs[run].codes[_index(ex, v, f"{name}.index")]
    if kind == "point":
        return ex.code_of_point(run, vector(v, f"{name}.point", 2))
    if kind == "code":
        return _code(ex, run, v, f"{name}.code")
    return ex.code_of_image(run, image(v, f"{name}.image", ex.image_shape))


# Each handler gets a request whose fields `route` has checked against the table below, its
# `run` already a valid run index.
def post_decode(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    run = body["run"]
    if ("point" in body) == ("code" in body):
        raise ApiError(400, "give exactly one of 'point' (map x, y) or 'code' (nz numbers)")
    if "point" in body:
        return ex.decode(run, ex.code_of_point(run, vector(body["point"], "point", 2)))
    return ex.decode(run, _code(ex, run, body["code"], "code"))


def post_interpolate(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    run = body["run"]
    a, b = endpoint(ex, run, body["a"], "a"), endpoint(ex, run, body["b"], "b")
    return ex.interpolate(run, a, b, integer(body.get("steps", 8), "steps", 1, MAX_STEPS))


def post_samples(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    n = integer(body.get("n", 16), "n", 1, MAX_SAMPLES)
    return ex.samples(body["run"], n, integer(body.get("seed", 0), "seed", 0, 2**31 - 1))


def post_encode(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    center = body.get("center", True)
    if not isinstance(center, bool):
        raise ApiError(400, f"'center' must be true or false, got {center!r:.40}")
    return ex.encode(body["run"], image(body["image"], "image", ex.image_shape), center)


class Route(NamedTuple):
    method: str
    handler: Handler
    required: tuple[str, ...] = ("run",)
    optional: tuple[str, ...] = ()


ROUTES = {
    "/api/runs": Route("GET", lambda ex, _: ex.info(), ()),
    "/api/map": Route("GET", lambda ex, query: ex.map_points(query["run"])),
    "/api/decode": Route("POST", post_decode, optional=("point", "code")),
    "/api/test-image": Route(
        "POST",
        lambda ex, body: ex.test_image(body["run"], _index(ex, body["index"], "index")),
        ("run", "index"),
    ),
    "/api/interpolate": Route("POST", post_interpolate, ("run", "a", "b"), ("steps",)),
    "/api/samples": Route("POST", post_samples, optional=("n", "seed")),
    "/api/encode": Route("POST", post_encode, ("run", "image"), ("center",)),
}


def route(method: str, path: str) -> Handler:
    """The handler of (method, path), which checks the request's fields first."""
    spec = ROUTES.get(path)
    if spec is None:
        raise ApiError(404, f"no API route {path:.200}; routes: {', '.join(ROUTES)}")
    if method != spec.method:
        raise ApiError(405, f"{path} accepts {spec.method}, not {method}")

    def checked(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
        missing = sorted(set(spec.required) - body.keys())
        if missing:
            raise ApiError(400, f"missing field(s) {', '.join(missing)}")
        accepted = ", ".join(sorted({*spec.required, *spec.optional}))
        unknown = sorted(body.keys() - {*spec.required, *spec.optional})
        if unknown:
            raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; accepted: {accepted:.200}")
        if "run" in body:
            body = {**body, "run": integer(body["run"], "run", 0, len(ex.runs) - 1)}
        return spec.handler(ex, body)

    return checked
