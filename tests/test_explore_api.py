"""`vaelab explore`: every API route against a real server on tiny trained runs, checked against
the models themselves; bad requests; static files; run discovery; the command line."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from vaelab.cli import main
from vaelab.data.store import split_arrays
from vaelab.errors import RunError
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.interpolation import interpolate
from vaelab.explore.server import STATIC_DIR, ExploreHandler, ExploreServer
from vaelab.explore.session import center_like_mnist, find_runs, fit_map, load_explorer
from vaelab.models import sample_prior
from vaelab.train.checkpoint import load_model

from .explore_helpers import Client, start_background
from .test_study_schema import _study as complete_study

MAP_POINTS = 300
NZ = 8


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return tiny_runs


@pytest.fixture(scope="module")
def explorer(runs, session_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAELAB_HOME", str(session_home))
        return load_explorer(
            [runs["ae"], runs["vae"]], classifier="smoke", device="cpu", map_points=MAP_POINTS
        )


@pytest.fixture(scope="module")
def client(explorer):
    server, url = start_background(explorer)
    yield Client(url)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def test_x(mnist_arrays):
    x8, y = split_arrays(mnist_arrays, "test")
    return torch.from_numpy(x8[:MAP_POINTS]).float() / 255.0, torch.from_numpy(y[:MAP_POINTS])


def pixels(b64: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(b64), np.uint8).copy()).float()


def as_bytes(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] quantised the way the server sends them, flattened per image."""
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).float().flatten(1)


def reference(runs, name):
    return load_model(runs[name], "best", "cpu")[0]


# ------------------------------------------------------------------------------- descriptions
def test_runs_describe_each_run_and_rank_dims_by_kl(client, runs, test_x):
    status, info = client.get("/api/runs")
    assert status == 200
    assert [r["kind"] for r in info["runs"]] == ["AE", "VAE β=1"]
    assert info["image_shape"] == [1, 28, 28] and info["test_images"] == MAP_POINTS
    assert info["classifier"]["variant"] == "smoke"
    vae = info["runs"][1]
    assert vae["dim_score"].startswith("KL") and vae["latent_dim"] == NZ
    # reference: KL(N(μ, σ²) ‖ N(0, 1)) per dim from torch.distributions, averaged over the images
    with torch.no_grad():
        post = reference(runs, "vae").posterior(test_x[0])
        mu, log_sigma = post.mu, post.log_sigma
    q = torch.distributions.Normal(mu.double(), log_sigma.double().exp())
    p = torch.distributions.Normal(torch.zeros_like(mu.double()), torch.ones_like(mu.double()))
    kl = torch.distributions.kl_divergence(q, p).mean(0)
    order = torch.argsort(kl, descending=True).tolist()
    assert [d["index"] for d in vae["dims"]] == order
    assert [d["score"] for d in vae["dims"]] == pytest.approx(kl[order].tolist(), rel=1e-6)
    ae = info["runs"][0]
    assert ae["dim_score"] == "variance of μ"
    assert all(d["lo"] < d["hi"] for d in ae["dims"] + vae["dims"])


def test_map_is_the_pca_of_the_test_codes(client, runs, test_x):
    status, m = client.get("/api/map?run=1")
    assert status == 200 and len(m["x"]) == MAP_POINTS
    assert m["labels"] == test_x[1].tolist()
    with torch.no_grad():
        mu = reference(runs, "vae").encode(test_x[0]).double().numpy()
    centred = mu - mu.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T  # numpy's PCA, up to the sign of each axis
    got = np.stack([m["x"], m["y"]], 1)
    for k in range(2):
        sign = np.sign(ref[:, k] @ got[:, k])
        np.testing.assert_allclose(got[:, k], sign * ref[:, k], atol=2e-4)
    status, info = client.get("/api/runs")
    assert info["runs"][1]["map"]["explained"] == pytest.approx(
        (s[:2] ** 2 / (s**2).sum()).tolist(), rel=1e-6
    )


def test_two_dim_codes_are_their_own_map():
    mu = torch.randn(50, 2, dtype=torch.float64)
    m = fit_map(mu)
    assert m.exact
    torch.testing.assert_close(m.to_map(mu), mu)
    torch.testing.assert_close(m.to_code(mu[:3]), mu[:3].float())


def test_pca_map_round_trips_points_and_has_orthonormal_axes():
    mu = torch.randn(200, 6, dtype=torch.float64) * torch.tensor([5, 3, 1, 1, 1, 1.0])
    m = fit_map(mu)
    torch.testing.assert_close(m.basis.T @ m.basis, torch.eye(2, dtype=torch.float64))
    xy = torch.tensor([[1.5, -2.0], [0.0, 0.3]], dtype=torch.float64)
    torch.testing.assert_close(m.to_map(m.to_code(xy)), xy, atol=1e-5, rtol=0)
    assert m.explained[0] > m.explained[1] > 0 and sum(m.explained) < 1


# ------------------------------------------------------------------------------- actions
def test_decode_point_is_the_decoder_at_the_plane_code(client, explorer, runs):
    lm = explorer.runs[1].latent_map
    xy = [0.3, -0.2]
    status, r = client.post("/api/decode", {"run": 1, "point": xy})
    assert status == 200 and r["server_ms"] > 0
    z = (lm.mean + torch.tensor(xy, dtype=torch.float64) @ lm.basis.T).float()
    with torch.no_grad():
        want = torch.sigmoid(reference(runs, "vae").decode(z[None]))
    assert (pixels(r["image"]) - as_bytes(want)[0]).abs().max() <= 1
    assert r["point"] == pytest.approx(xy, abs=1e-4)
    probs = clf.classify(explorer.classifier, want)[1][0]
    assert r["reading"] == {"label": int(probs.argmax()), "confidence": round(probs.max(), 4)}


def test_decode_code_and_points_differ(client, runs):
    code = torch.linspace(-1, 1, NZ)
    status, r = client.post("/api/decode", {"run": 0, "code": code.tolist()})
    assert status == 200
    with torch.no_grad():
        want = torch.sigmoid(reference(runs, "ae").decode(code[None]))
    assert (pixels(r["image"]) - as_bytes(want)[0]).abs().max() <= 1
    _, r1 = client.post("/api/decode", {"run": 1, "point": [0.0, 0.0]})
    _, r2 = client.post("/api/decode", {"run": 1, "point": [2.0, 1.0]})
    assert r1["image"] != r2["image"]


def test_test_image_returns_the_image_its_code_and_reconstruction(client, runs, test_x):
    status, r = client.post("/api/test-image", {"run": 0, "index": 5})
    assert status == 200 and r["label"] == int(test_x[1][5])
    assert (pixels(r["image"]) - as_bytes(test_x[0][5:6])[0]).abs().max() == 0
    with torch.no_grad():
        z = reference(runs, "ae").encode(test_x[0][5:6])
    assert r["code"] == pytest.approx(z[0].tolist(), abs=1e-4)


def test_interpolate_lerp_and_slerp_match_the_reference_paths(client, runs, test_x):
    status, r = client.post(
        "/api/interpolate", {"run": 1, "a": {"index": 0}, "b": {"index": 1}, "steps": 3}
    )
    assert status == 200
    model = reference(runs, "vae")
    with torch.no_grad():
        codes = model.encode(test_x[0][:2]).double()
        for mode in ("lerp", "slerp"):
            z = interpolate(codes[0], codes[1], 3, mode)
            want = as_bytes(torch.sigmoid(model.decode(z.float())))
            got = torch.stack([pixels(b) for b in r[mode]["images"]])
            assert got.shape == (5, 784) and (got - want).abs().max() <= 1
            assert r[mode]["norms"] == pytest.approx(z.norm(dim=1).tolist(), abs=1e-3)
            assert len(r[mode]["readings"]) == 5 and len(r[mode]["points"]) == 5
    # an end given as the image itself is encoded by the run: the same path
    image = test_x[0][1].flatten().tolist()
    _, r2 = client.post(
        "/api/interpolate", {"run": 1, "a": {"index": 0}, "b": {"image": image}, "steps": 3}
    )
    assert r2["lerp"]["norms"] == pytest.approx(r["lerp"]["norms"], abs=1e-3)


def test_samples_are_the_seeded_prior_samples_of_vaelab_sample(client, runs):
    status, r = client.post("/api/samples", {"run": 1, "n": 5, "seed": 3})
    assert status == 200 and len(r["images"]) == 5 and len(r["readings"]) == 5
    want = as_bytes(sample_prior(reference(runs, "vae"), 5, 3, torch.device("cpu")))
    got = torch.stack([pixels(b) for b in r["images"]])
    assert (got - want).abs().max() <= 1


def test_encode_a_drawing(client, runs, test_x):
    digit = torch.roll(test_x[0][3:4], shifts=(5, -4), dims=(2, 3))  # off-centre
    body = {"run": 0, "image": digit.flatten().tolist(), "center": False}
    status, r = client.post("/api/encode", body)
    assert status == 200
    model = reference(runs, "ae")
    with torch.no_grad():
        z = model.encode(digit)
        recon = torch.sigmoid(model.decode(z))
    assert r["code"] == pytest.approx(z[0].tolist(), abs=1e-4)
    assert (pixels(r["reconstruction"]) - as_bytes(recon)[0]).abs().max() <= 1
    assert set(r["input_reading"]) == {"label", "confidence"}
    _, centred = client.post("/api/encode", {**body, "center": True})
    seen = pixels(centred["input"]).view(28, 28)
    cy = float((seen.sum(1) * torch.arange(28)).sum() / seen.sum())
    cx = float((seen.sum(0) * torch.arange(28)).sum() / seen.sum())
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_center_like_mnist_normalises_size_and_position(test_x):
    small = torch.zeros(1, 1, 28, 28)
    small[0, 0, 2:8, 3:6] = 1.0  # a 6×3 stroke in a corner
    out = center_like_mnist(small)[0, 0]
    rows = torch.nonzero(out.amax(1) > 0.05).flatten()
    assert 19 <= len(rows) <= 21  # the longer side scaled to the 20-pixel box
    cy = float((out.sum(1) * torch.arange(28)).sum() / out.sum())
    assert abs(cy - 14) <= 0.6
    empty = torch.zeros(1, 1, 28, 28)
    assert torch.equal(center_like_mnist(empty), empty)
    # MNIST digits already went through this normalisation: they barely change
    for i in range(20):
        x = test_x[0][i : i + 1]
        again = center_like_mnist(x)
        assert torch.corrcoef(torch.stack([x.flatten(), again.flatten()]))[0, 1] > 0.9


def test_concurrent_decodes_are_all_answered_correctly(client):
    _, want = client.post("/api/decode", {"run": 1, "point": [0.5, 0.5]})
    results: list[tuple[int, str]] = []

    def worker() -> None:
        for _ in range(10):
            status, r = client.post("/api/decode", {"run": 1, "point": [0.5, 0.5]})
            results.append((status, r.get("image", "")))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 60 and all(r == (200, want["image"]) for r in results)


# ------------------------------------------------------------------------------- bad requests
JSON = {"Content-Type": "application/json"}
CODE_OK = [0.0] * NZ
BAD_POSTS = [
    ("/api/decode", {"run": 0, "code": [1.0, 2.0]}, 400, "must have 8 numbers"),
    ("/api/decode", b'{"run": 0, "code": [NaN, 0, 0, 0, 0, 0, 0, 0]}', 400, "NaN"),
    ("/api/decode", b'{"run": 0, "point": [Infinity, 0]}', 400, "Infinity"),
    ("/api/decode", b'{"run": 0, "point": [1e999, 0]}', 400, "finite"),
    ("/api/decode", {"run": 0, "code": [None] * NZ}, 400, "must be a number"),
    ("/api/decode", {"run": 0, "code": ["1"] * NZ}, 400, "must be a number"),
    ("/api/decode", {"run": 0, "code": [True] * NZ}, 400, "must be a number"),
    ("/api/decode", {"run": 0, "point": [0.0, 1e6]}, 400, "finite number in"),
    ("/api/decode", {"run": 0, "point": [0.0, 0.0, 0.0]}, 400, "must have 2 numbers"),
    ("/api/decode", {"run": 0, "point": "0,0"}, 400, "list of 2 numbers"),
    ("/api/decode", {"run": 0, "point": [0, 0], "code": CODE_OK}, 400, "exactly one"),
    ("/api/decode", {"run": 0}, 400, "exactly one"),
    ("/api/decode", {"point": [0, 0]}, 400, "missing field(s) run"),
    ("/api/decode", {"run": 2, "point": [0, 0]}, 400, "'run' must be in [0, 1]"),
    ("/api/decode", {"run": -1, "point": [0, 0]}, 400, "'run'"),
    ("/api/decode", {"run": True, "point": [0, 0]}, 400, "'run' must be an integer"),
    ("/api/decode", {"run": 0, "point": [0, 0], "extra": 1}, 400, "unknown field(s) extra"),
    ("/api/decode", b"[1, 2]", 400, "must be a JSON object"),
    ("/api/decode", b"{", 400, "not valid JSON"),
    ("/api/decode", b"\xff\xfe", 400, "not UTF-8"),
    ("/api/samples", {"run": 0, "n": 65}, 400, "'n' must be in [1, 64]"),
    ("/api/samples", {"run": 0, "n": 0}, 400, "'n' must be in [1, 64]"),
    ("/api/samples", {"run": 0, "n": 2.5}, 400, "'n' must be an integer"),
    ("/api/samples", {"run": 0, "seed": -1}, 400, "'seed'"),
    (
        "/api/interpolate",
        {"run": 0, "a": {"index": 0}, "b": {"index": 1}, "steps": 33},
        400,
        "'steps' must be in [1, 32]",
    ),
    (
        "/api/interpolate",
        {"run": 0, "a": {"index": 0}, "b": {"index": 1}, "steps": 0},
        400,
        "'steps'",
    ),
    (
        "/api/interpolate",
        {"run": 0, "a": {"index": 0, "code": CODE_OK}, "b": {"index": 1}},
        400,
        "exactly one of index, point, code, image",
    ),
    (
        "/api/interpolate",
        {"run": 0, "a": {"index": MAP_POINTS}, "b": {"index": 1}},
        400,
        f"'a.index' must be in [0, {MAP_POINTS - 1}]",
    ),
    (
        "/api/interpolate",
        {"run": 0, "a": {"code": [0.0] * 3}, "b": {"index": 1}},
        400,
        "'a.code' must have 8 numbers",
    ),
    (
        "/api/interpolate",
        {"run": 0, "a": {"image": [0.5] * 10}, "b": {"index": 1}},
        400,
        "'a.image' must be a flat list of 784",
    ),
    ("/api/interpolate", {"run": 0, "a": 3, "b": {"index": 1}}, 400, "'a' must be an object"),
    ("/api/test-image", {"run": 0, "index": -1}, 400, "'index' must be in"),
    ("/api/encode", {"run": 0, "image": [0.5] * 783}, 400, "784 numbers in [0, 1] (1×28×28)"),
    ("/api/encode", {"run": 0, "image": [0.5] * 783 + [1.5]}, 400, "'image[783]'"),
    ("/api/encode", {"run": 0, "image": [-0.1] + [0.5] * 783}, 400, "in [0, 1]"),
    ("/api/encode", {"run": 0, "image": [0.5] * 784, "center": "yes"}, 400, "'center'"),
    ("/api/encode", {"run": 0, "image": [[0.5] * 28] * 28}, 400, "flat list of 784 numbers"),
    ("/api/encode", {"run": 0, "image": [0.5] * 783 + [None]}, 400, "'image[783]' must be a"),
]


def assert_json_error(status: int, headers: dict[str, str], data: bytes, want: int) -> str:
    assert status == want, data
    assert headers["content-type"] == "application/json"
    body = json.loads(data)
    assert set(body) == {"error"} and body["error"]
    assert b"Traceback" not in data and b"<html" not in data.lower()
    return body["error"]


@pytest.mark.parametrize(("path", "body", "status", "fragment"), BAD_POSTS)
def test_bad_posts_get_a_clear_4xx_json_error(client, path, body, status, fragment):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got = client.request("POST", path, raw, JSON)
    assert fragment in assert_json_error(*got, status)


BAD_REQUESTS = [
    ("GET", "/api/map", 400, "missing field(s) run"),
    ("GET", "/api/map?run=abc", 400, "'run' must be an integer"),
    ("GET", "/api/map?run=9", 400, "'run' must be in [0, 1]"),
    ("GET", "/api/map?run=0&run=1", 400, "given twice"),
    ("GET", "/api/map?run=0&zoom=2", 400, "unknown field(s) zoom"),
    ("GET", "/api/nope", 404, "no API route /api/nope"),
    ("GET", "/nope", 404, "nothing at /nope"),
    ("GET", "/api/decode", 405, "accepts POST, not GET"),
    ("DELETE", "/api/decode", 405, "accepts POST, not DELETE"),
    ("PUT", "/", 405, "accepts GET, not PUT"),
    # static files are looked up by name: a path that would leave the folder names no file
    ("GET", "/static/../../etc/passwd", 404, "no static file"),
    ("GET", "/static/%2e%2e/%2e%2e/etc/passwd", 404, "no static file"),
    ("GET", "/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 404, "no static file"),
    ("GET", "/static/..%2fsession.py", 404, "no static file"),
    ("GET", "/static/../session.py", 404, "no static file"),
    ("GET", "/static//etc/passwd", 404, "no static file"),
    ("GET", "/static/%252e%252e/%252e%252e/etc/passwd", 404, "no static file"),
    ("GET", "/static/missing.js", 404, "no static file"),
    ("GET", "/static/", 404, "no static file"),
    ("GET", "/static/a%00.js", 404, "no static file"),
    ("GET", "/static/api.py", 404, "no static file"),
]


@pytest.mark.parametrize(("method", "path", "status", "fragment"), BAD_REQUESTS)
def test_bad_routes_methods_and_paths_get_json_errors(client, method, path, status, fragment):
    got = client.request(method, path)
    assert fragment in assert_json_error(*got, status)


def test_transport_level_refusals(client):
    big = b'{"run": 0, "image": [' + b"0.5, " * 20_000 + b"0.5]}"
    assert len(big) > 64 * 1024
    got = client.request("POST", "/api/encode", big, JSON)
    assert "exceeds 65536 bytes" in assert_json_error(*got, 413)
    raw = json.dumps({"run": 0, "point": [0, 0]}).encode()
    got = client.request("POST", "/api/decode", raw, {"Content-Type": "text/plain"})
    assert "application/json" in assert_json_error(*got, 415)
    got = client.request(
        "POST", "/api/decode", raw, {**JSON, "Transfer-Encoding": "chunked", "Content-Length": "0"}
    )
    assert "Content-Length" in assert_json_error(*got, 411)
    got = client.request("GET", "/api/runs", headers={"Host": "rebind.example:8765"})
    assert "loopback" in assert_json_error(*got, 403)
    got = client.request("GET", "/api/runs", headers={"Host": "localhost:1"})
    assert got[0] == 200
    # no Content-Length at all: only a raw socket can send that (the server then hangs up)
    reply = raw_exchange(client, b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411") and "Content-Length" in json.loads(body)["error"]
    # a malformed request line is answered by http.server itself: still JSON
    reply = raw_exchange(client, b"GARBAGE\r\n\r\n")
    assert b'{"error":' in reply and b"<html" not in reply.lower()
    reply = raw_exchange(
        client, b"GET /api/runs HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    assert b"HTTP/1.1 400" in reply and b"several" in reply


def test_slow_and_short_bodies_free_their_thread(explorer, monkeypatch):
    monkeypatch.setattr(ExploreHandler, "timeout", 0.5)
    server, url = start_background(explorer)
    try:
        client = Client(url)
        head = b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        # promises 100 bytes, sends 10, then waits: answered 408 after the read timeout
        with socket.create_connection((client.host, int(client.port)), timeout=10) as s:
            s.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"run": 0,')
            reply = s.recv(65536)
            while b"}" not in reply.partition(b"\r\n\r\n")[2]:
                reply += s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in reply
        # sends 10 of 100 bytes and stops writing: answered 400, the body is short
        with socket.create_connection((client.host, int(client.port)), timeout=10) as s:
            s.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"run": 0,')
            s.shutdown(socket.SHUT_WR)
            reply = b"".join(iter(lambda: s.recv(65536), b""))
        assert reply.startswith(b"HTTP/1.1 400") and b"ended after 10 of 100 bytes" in reply
    finally:
        server.shutdown()
        server.server_close()


def raw_exchange(client: Client, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection((client.host, int(client.port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_internal_errors_say_so_and_log_the_traceback(client, explorer, monkeypatch, capfd):
    def broken(*args, **kwargs):
        raise RuntimeError(f"boom in {__file__}")

    monkeypatch.setattr(explorer, "decode", broken)
    got = client.request("POST", "/api/decode", b'{"run": 0, "point": [0, 0]}', JSON)
    assert assert_json_error(*got, 500) == "internal error"  # no detail, no server path
    err = capfd.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom in" in err


def test_a_rejected_body_does_not_poison_the_keep_alive_connection(client):
    import http.client

    conn = http.client.HTTPConnection(client.host, int(client.port), timeout=10)
    conn.request("POST", "/api/nope", body=b'{"run": 0}', headers=JSON)
    assert conn.getresponse().read() and True
    conn.request("GET", "/api/runs")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["runs"]
    conn.close()


# ------------------------------------------------------------------------------- static files
def test_page_and_static_files(client):
    status, headers, data = client.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    assert b"/static/app.js" in data
    status, headers, data = client.request("GET", "/static/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    status, headers, data = client.request("HEAD", "/")
    assert status == 200 and data == b"" and int(headers["content-length"]) > 100


def test_page_needs_nothing_outside_the_server():
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text()
        for marker in ("http://", "https://", "//cdn", "@import", "url("):
            assert marker not in text, f"{name} refers to {marker}"


# ------------------------------------------------------------------------------- discovery + CLI
def test_find_runs_for_run_dirs_studies_and_bad_paths(runs, tmp_path):
    assert find_runs([runs["ae"], runs["vae"], runs["ae"]]).dirs == [runs["ae"], runs["vae"]]
    study = tmp_path / "study"
    for name, src in (("ae", "ae"), ("beta_1_r0", "vae"), ("beta_3_r0", "vae")):
        shutil.copytree(runs[src], study / "runs" / name)
    (study / "study.json").write_text(json.dumps(complete_study().to_dict()))  # tuned: beta_3_r0
    found = find_runs([study])
    assert found.dirs == [study / "runs" / "ae", study / "runs" / "beta_3_r0"]
    assert found.classifier == "smoke"
    (study / "study.json").unlink()  # an unfinished study: every finished run
    assert find_runs([study]).dirs == [study / "runs" / n for n in ("ae", "beta_1_r0", "beta_3_r0")]
    with pytest.raises(RunError, match="neither a run directory"):
        find_runs([tmp_path / "nothing"])


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["explore", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaelab: error: ") and "study" in err[0]


def test_busy_port_names_the_fix(explorer):
    server, _ = start_background(explorer)
    try:
        with pytest.raises(RunError, match="--port 0"):
            ExploreServer(explorer, "127.0.0.1", server.server_port)
    finally:
        server.shutdown()
        server.server_close()


def _start_cli(runs, session_home, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "VAELAB_HOME": str(session_home), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vaelab", "explore", str(runs["ae"]), str(runs["vae"])]
    cmd += ["--port", "0", "--no-browser", "--classifier", "smoke", "--map-points", "100", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert "serving 2 run(s) at http://" in line, line + proc.stderr.read()  # type: ignore[union-attr]
    return proc, line.split(" at ")[1].split()[0]


def test_cli_serves_prints_the_url_and_stops_cleanly_on_ctrl_c(runs, session_home, explorer):
    proc, url = _start_cli(runs, session_home)
    try:
        assert url.startswith("http://127.0.0.1:")
        status, info = Client(url).get("/api/runs")
        assert status == 200 and len(info["runs"]) == 2 and info["test_images"] == 100
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_cli_warns_when_binding_beyond_loopback(runs, session_home, explorer):
    proc, _ = _start_cli(runs, session_home, "--host", "0.0.0.0")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "warning: serving on 0.0.0.0" in err and "no authentication" in err
