"""The explorer's part of the bad-input survey: what a careless or hostile client can send gets a
4xx JSON answer that names the problem and no server path; a client that goes away leaves no
traceback; a burst of requests and connections is answered in full; a damaged study or run folder
is refused with one line before anything is served."""

from __future__ import annotations

import json
import random
import shutil
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import vaelab
from vaelab.explore import server as explore_server
from vaelab.explore.session import load_explorer

from .bad_inputs import run_main
from .explore_helpers import Client, start_background
from .test_study_schema import _study as complete_study

SOURCE = str(Path(vaelab.__file__).resolve().parent)
JSON = {"Content-Type": "application/json"}
NZ = 8


@pytest.fixture(scope="module")
def served(tiny_runs, session_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAELAB_HOME", str(session_home))
        explorer = load_explorer(
            [tiny_runs["ae"], tiny_runs["vae"]], classifier="smoke", map_points=100
        )
    server, url = start_background(explorer)
    yield Client(url)
    server.shutdown()
    server.server_close()


def exchange(client: Client, request: bytes) -> bytes:
    """Raw bytes in, every byte of the answer out (the server closes or the client reads all)."""
    with socket.create_connection((client.host, int(client.port)), timeout=30) as s:
        s.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def post(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += list(headers) or [f"Content-Length: {len(body)}"]
    return "\r\n".join([*head, "Connection: close", "", ""]).encode("latin-1") + body


def get(path: str, *headers: str) -> bytes:
    head = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close", "", ""]
    return "\r\n".join(head).encode("latin-1")


def nested(levels: int) -> bytes:
    """A body nested `levels` deep: the object, then levels - 1 lists in its 'code'."""
    return b'{"run": 0, "code": ' + b"[" * (levels - 1) + b"0" + b"]" * (levels - 1) + b"}"


CODE = ", ".join(["0"] * (NZ - 1))
# (id, raw request, status, fragment of the error)
CASES = [
    # numbers: a real parser with bounds, not an is-digit check before int()
    ("query-double-minus", get("/api/map?run=--0"), 400, "'run' must be an integer"),
    ("query-superscript", get("/api/map?run=%C2%B2"), 400, "'run' must be an integer"),
    ("query-arabic-digit", get("/api/map?run=%D9%A3"), 400, "'run' must be an integer"),
    ("query-float", get("/api/map?run=1e0"), 400, "'run' must be an integer"),
    ("query-spaces", get("/api/map?run=%200"), 400, "'run' must be an integer"),
    ("query-empty", get("/api/map?run="), 400, "'run' must be an integer"),
    ("query-5000-digits", get("/api/map?run=" + "9" * 5000), 400, "'run' must be an integer"),
    ("query-not-utf8", get("/api/map?run=%FF"), 400, "'run' must be an integer"),
    ("index-double-minus", post("/api/test-image", b'{"run": 0, "index": "--1"}'), 400, "'index'"),
    ("index-as-text", post("/api/test-image", b'{"run": 0, "index": "5"}'), 400, "integer"),
    ("n-superscript", post("/api/samples", '{"run": 0, "n": "²"}'.encode()), 400, "'n' must be"),
    (
        "n-5000-digits",
        post("/api/samples", b'{"run": 0, "n": 1' + b"0" * 5000 + b"}"),
        400,
        "digit",
    ),
    (
        "seed-19-digits",
        post("/api/samples", b'{"run": 0, "seed": ' + b"9" * 19 + b"}"),
        400,
        "digit",
    ),
    (
        "code-10**400",
        post("/api/decode", f'{{"run": 0, "code": [1{"0" * 400}, {CODE}]}}'.encode()),
        400,
        "digit",
    ),
    (
        "code-1e400",
        post("/api/decode", f'{{"run": 0, "code": [1e400, {CODE}]}}'.encode()),
        400,
        "finite",
    ),
    (
        "code-huge-18-digits",
        post("/api/decode", f'{{"run": 0, "code": [{"9" * 18}, {CODE}]}}'.encode()),
        400,
        "finite number in",
    ),
    (
        "code-negative-zero-ok-but-point-huge",
        post("/api/decode", b'{"run": 0, "point": [-0.0, -1e300]}'),
        400,
        "'point[1]'",
    ),
    # the body: size and depth bounded before parsing
    ("50000-brackets", post("/api/decode", b"[" * 50_000), 400, "nests deeper than 8"),
    ("50000-braces", post("/api/decode", b'{"a":' * 10_000), 400, "nests deeper than 8"),
    ("depth-9-in-a-field", post("/api/decode", nested(9)), 400, "nests deeper than 8"),
    ("depth-8-is-read", post("/api/decode", nested(8)), 400, "'code' must have 8 numbers"),
    (
        "brackets-in-strings-are-text",
        post("/api/decode", b'{"run": "[[[[[[[[[[\\"[[[["}'),
        400,
        "'run' must be an integer",
    ),
    (
        "unterminated-escapes",
        post("/api/decode", b'"' + b'\\"' * 20_000 + b"\\"),
        400,
        "not valid JSON",
    ),
    ("lone-surrogate", post("/api/decode", b'{"run": "\\ud800"}'), 400, "'run' must be an integer"),
    ("too-big", post("/api/encode", b"[" + b"0," * 40_000 + b"0]"), 413, "exceeds 65536 bytes"),
    # Content-Length: only a plain byte count
    ("length-text", post("/api/decode", b"", "Content-Length: abc"), 400, "not a byte count"),
    (
        "length-superscript",
        post("/api/decode", b"", "Content-Length: \xb2"),
        400,
        "not a byte count",
    ),
    ("length-negative", post("/api/decode", b"", "Content-Length: -2"), 400, "not a byte count"),
    ("length-plus", post("/api/decode", b"", "Content-Length: +2"), 400, "not a byte count"),
    ("length-underscore", post("/api/decode", b"", "Content-Length: 1_0"), 400, "not a byte count"),
    (
        "length-30-digits",
        post("/api/decode", b"", "Content-Length: " + "9" * 30),
        400,
        "not a byte count",
    ),
    ("length-10**12", post("/api/decode", b"", "Content-Length: " + "9" * 12), 413, "exceeds"),
    (
        "length-twice",
        post("/api/decode", b"", "Content-Length: 2", "Content-Length: 2"),
        400,
        "byte count",
    ),
    # paths, headers, request lines
    ("static-300-chars", get("/static/" + "a" * 300), 404, "no static file"),
    ("static-5000-chars", get("/static/" + "%2e" * 5000), 404, "no static file"),
    ("static-nul", get("/static/app.js%00.html"), 404, "no static file"),
    ("static-source", get("/static/../server.py"), 404, "no static file"),
    ("api-long-path", get("/api/" + "x" * 5000), 404, "no API route"),
    ("host-bracket", get("/api/runs").replace(b"Host: 127.0.0.1", b"Host: ["), 403, "refused"),
    (
        "host-300-chars",
        get("/api/runs").replace(b"Host: 127.0.0.1", b"Host: " + b"h" * 300),
        403,
        "refused",
    ),
    # (each sent exactly as far as the server reads it: unread bytes would reset the answer)
    ("request-line-64k", b"GET /" + b"a" * 65_532, 414, "Too Long"),
    ("header-line-64k", b"GET / HTTP/1.1\r\nX: " + b"a" * 65_534, 431, "Line too long"),
    ("101-headers", b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 101, 431, "Too many headers"),
    ("http-9.9", b"GET / HTTP/9.9\r\n\r\n", 505, "Invalid HTTP version"),
    ("bad-version", b"GET / FOO\r\n\r\n", 400, "Bad request version"),
    ("binary-method", b"\x00\xff\xfe / HTTP/1.1\r\n\r\n", 501, "Unsupported method"),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_bad_requests_get_a_4xx_json_answer_without_server_paths(
    served, request_bytes, status, fragment
):
    reply = exchange(served, request_bytes)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) or head.startswith(
        f"HTTP/1.0 {status} ".encode()
    ), reply[:300]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert fragment in error, error
    assert SOURCE not in error and "Traceback" not in error and 'File "' not in error


def test_clients_that_go_away_leave_no_traceback(served, capfd):
    host, port = served.host, int(served.port)
    half_body = post("/api/decode", b'{"run": 0,', "Content-Length: 100")
    for request in (half_body, b"GET /api/ru", post("/api/encode", b"")[:-10]):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(request)
    # an abrupt reset (SO_LINGER 0) mid-body, and a client that hangs up before the answer
    for request, wait in ((half_body, 0.0), (get("/api/map?run=0"), 0.0)):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        time.sleep(wait)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(1.0)  # let the server's threads finish with the dead connections
    assert served.get("/api/runs")[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err


def test_mutated_requests_never_reach_a_500(served, capfd):
    """400 seeded random mutations of valid requests (bytes replaced, repeated, deleted): every
    answer with a status line is 200 or a JSON error below 500 (or 501/505, http.server's own
    refusals of unknown methods and versions), and the server log holds no traceback."""
    rng = random.Random(0)
    valid = [
        post("/api/decode", b'{"run": 0, "point": [0.5, -1]}'),
        post("/api/interpolate", b'{"run": 1, "a": {"index": 0}, "b": {"index": 1}, "steps": 2}'),
        post("/api/samples", b'{"run": 0, "n": 3, "seed": 1}'),
        get("/api/map?run=1"),
    ]
    alphabet = b'{}[]":,-0123456789.eE+ \r\n\\\x00\xff%/?&=abcnrtu'
    for _ in range(400):
        request = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 6)):
            at, byte = rng.randrange(len(request)), rng.choice(alphabet)
            edit = rng.choice(("replace", "repeat", "delete"))
            if edit == "replace":
                request[at] = byte
            elif edit == "repeat":
                request[at:at] = bytes([byte]) * rng.choice((1, 3, 50))
            else:
                del request[at : at + rng.randint(1, 5)]
        with socket.create_connection((served.host, int(served.port)), timeout=30) as s:
            s.sendall(bytes(request))
            s.shutdown(socket.SHUT_WR)
            reply = b"".join(iter(lambda: s.recv(65536), b""))
        if reply.startswith(b"HTTP/1.1 "):
            status = int(reply[9:12])
            assert status == 200 or (status != 500 and b'{"error":' in reply), reply[:300]
    assert "Traceback" not in capfd.readouterr().err


# --------------------------------------------------------------------------- load
def test_a_burst_of_requests_and_connections_is_answered_in_full(served):
    """500 requests over 50 threads, then 100 connections open at once: every one answered
    (socketserver's listen backlog of 5 reset some of the former and left some of the latter
    unanswered), within a bound, on loopback only."""
    assert served.host == "127.0.0.1"
    bodies = [{"run": i % 2, "point": [i % 7 / 7, i % 5 / 5]} for i in range(500)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda b: served.post("/api/decode", b)[0], bodies))
    assert statuses == [200] * 500
    assert time.monotonic() - t0 < 120
    socks = [
        socket.create_connection((served.host, int(served.port)), timeout=30) for _ in range(100)
    ]
    try:
        for s in socks:
            s.sendall(get("/api/map?run=1"))
        with ThreadPoolExecutor(100) as pool:
            replies = list(pool.map(lambda s: b"".join(iter(lambda: s.recv(65536), b"")), socks))
    finally:
        for s in socks:
            s.close()
    assert all(r.startswith(b"HTTP/1.1 200 ") for r in replies)
    assert len({r.partition(b"\r\n\r\n")[2] for r in replies}) == 1  # the same map, whole
    assert time.monotonic() - t0 < 180


# --------------------------------------------------------------------------- damaged folders
def _study(runs: dict[str, Path], root: Path) -> Path:
    study = root / "study"
    for name, src in (("ae", "ae"), ("beta_1_r0", "vae"), ("beta_3_r0", "vae")):
        shutil.copytree(runs[src], study / "runs" / name)
    (study / "study.json").write_text(json.dumps(complete_study().to_dict()))
    return study


def _edit_study(study: Path, **changes) -> None:
    data = json.loads((study / "study.json").read_text())
    (study / "study.json").write_text(json.dumps({**data, **changes}))


FOLDER_CASES = {
    "study-tuned-number": (lambda s: _edit_study(s, tuned=5), "tuned"),
    "study-classifier-text": (lambda s: _edit_study(s, classifier="smoke"), "classifier"),
    "study-tuned-only": (
        lambda s: (s / "study.json").write_text('{"tuned": 5}'),
        "study.json",
    ),
    "study-classifier-only": (
        lambda s: (s / "study.json").write_text('{"classifier": "smoke"}'),
        "study.json",
    ),
    "study-not-json": (lambda s: (s / "study.json").write_text("{"), "cannot read"),
    "study-not-utf8": (lambda s: (s / "study.json").write_bytes(b"\xff\xfe"), "cannot read"),
    "study-a-list": (lambda s: (s / "study.json").write_text("[]"), "study.json"),
    "study-tuned-run-deleted": (
        lambda s: shutil.rmtree(s / "runs" / "beta_3_r0"),
        "names run 'beta_3_r0'",
    ),
    "unfinished-study-damaged-done": (
        lambda s: ((s / "study.json").unlink(), (s / "runs" / "ae" / "DONE").write_text("[1]")),
        "DONE",
    ),
    "run-config-damaged": (
        lambda s: (s / "runs" / "ae" / "config.json").write_text('{"latent_dim": true}'),
        "config.json",
    ),
    "run-checkpoint-garbage": (
        lambda s: (s / "runs" / "beta_3_r0" / "checkpoints" / "best.pt").write_bytes(b"junk"),
        "best.pt",
    ),
}


@pytest.mark.parametrize("damage", sorted(FOLDER_CASES))
def test_a_damaged_study_or_run_is_refused_before_serving(
    tiny_runs, tmp_path, capsys, monkeypatch, damage
):
    def never_serve(*args, **kwargs):
        raise AssertionError("a damaged folder reached the server")

    monkeypatch.setattr(explore_server, "serve", never_serve)
    study = _study(tiny_runs, tmp_path)
    edit, needle = FOLDER_CASES[damage]
    edit(study)
    argv = ["explore", str(study), "--no-browser", "--port", "0", "--device", "cpu"]
    rc, _, err = run_main(argv, capsys)
    assert rc == 1 and "Traceback" not in err, err
    *progress, last = err.strip().splitlines()  # what was found and loaded, then the refusal
    assert all(line.startswith(("vaelab explore: ", "  loading ")) for line in progress), err
    assert last.startswith("vaelab: error: ") and needle in last, last
