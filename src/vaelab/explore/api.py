"""The JSON API: one function per route, each validating its request before touching a model.

Routes (every POST takes `run`, the index of a run in GET /api/runs):

    GET  /api/runs                         dataset, classifier, and per run: kind, nz, map, dims
    GET  /api/map?run=R                    map coordinates and labels of the test codes
    POST /api/decode       {run, point | code}             image, classifier reading, map point
    POST /api/test-image   {run, index}                    image, label, code, reconstruction
    POST /api/interpolate  {run, a, b, steps}              lerp and slerp strips with readings
    POST /api/samples      {run, n, seed}                  decoded prior samples with readings
    POST /api/encode       {run, image, center}            a drawing's code, point, reconstruction

An endpoint `a`/`b` is one of {"index": i} (a test image), {"point": [x, y]} (a map point of this
run), {"code": [nz numbers]} or {"image": [C·H·W pixels in [0, 1]]} (encoded by this run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vaelab.explore.session import Explorer
from vaelab.explore.validate import (
    MAX_SAMPLES,
    MAX_STEPS,
    ApiError,
    check_fields,
    image,
    integer,
    vector,
)

Route = Callable[[Explorer, dict[str, Any]], dict[str, Any]]


def _run(ex: Explorer, body: dict[str, Any]) -> int:
    return integer(body["run"], "run", 0, len(ex.runs) - 1)


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
        return ex.code_of_index(run, _index(ex, v, f"{name}.index"))
    if kind == "point":
        return ex.code_of_point(run, vector(v, f"{name}.point", 2))
    if kind == "code":
        return _code(ex, run, v, f"{name}.code")
    return ex.code_of_image(run, image(v, f"{name}.image", ex.image_shape))


def get_runs(ex: Explorer, query: dict[str, Any]) -> dict[str, Any]:
    check_fields(query, set())
    return ex.info()


def get_map(ex: Explorer, query: dict[str, Any]) -> dict[str, Any]:
    check_fields(query, {"run"})
    return ex.map_points(_run(ex, query))


def post_decode(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"run"}, {"point", "code"})
    run = _run(ex, body)
    if ("point" in body) == ("code" in body):
        raise ApiError(400, "give exactly one of 'point' (map x, y) or 'code' (nz numbers)")
    if "point" in body:
        return ex.decode(run, ex.code_of_point(run, vector(body["point"], "point", 2)))
    return ex.decode(run, _code(ex, run, body["code"], "code"))


def post_test_image(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"run", "index"})
    return ex.test_image(_run(ex, body), _index(ex, body["index"], "index"))


def post_interpolate(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"run", "a", "b"}, {"steps"})
    run = _run(ex, body)
    a, b = endpoint(ex, run, body["a"], "a"), endpoint(ex, run, body["b"], "b")
    return ex.interpolate(run, a, b, integer(body.get("steps", 8), "steps", 1, MAX_STEPS))


def post_samples(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"run"}, {"n", "seed"})
    n = integer(body.get("n", 16), "n", 1, MAX_SAMPLES)
    return ex.samples(_run(ex, body), n, integer(body.get("seed", 0), "seed", 0, 2**31 - 1))


def post_encode(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    check_fields(body, {"run", "image"}, {"center"})
    run = _run(ex, body)
    center = body.get("center", True)
    if not isinstance(center, bool):
        raise ApiError(400, f"'center' must be true or false, got {center!r:.40}")
    return ex.encode(run, image(body["image"], "image", ex.image_shape), center)


ROUTES: dict[str, dict[str, Route]] = {
    "/api/runs": {"GET": get_runs},
    "/api/map": {"GET": get_map},
    "/api/decode": {"POST": post_decode},
    "/api/test-image": {"POST": post_test_image},
    "/api/interpolate": {"POST": post_interpolate},
    "/api/samples": {"POST": post_samples},
    "/api/encode": {"POST": post_encode},
}


def route(method: str, path: str) -> Route:
    """The handler of (method, path); 404 for an unknown path, 405 for a known one."""
    methods = ROUTES.get(path)
    if methods is None:
        raise ApiError(404, f"no API route {path}; routes: {', '.join(ROUTES)}")
    if method not in methods:
        raise ApiError(405, f"{path} accepts {', '.join(methods)}, not {method}")
    return methods[method]
