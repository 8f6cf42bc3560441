"""The explorer's HTTP server and JSON API (routes and fields: docs/explorer.md): Python's
`http.server.ThreadingHTTPServer`, hardened, and a table of routes, each checking its untrusted
request before touching a model.

Chosen over Starlette on uvicorn, which answered 13 of the survey's malformed requests in plain
text or not at all and adds seven dependencies (measured in docs/explorer.md). Every refusal is an
`ApiError`: a 4xx status and one JSON sentence naming the field, what was wrong and what is
accepted (a 500 says only "internal error"; the traceback goes to the terminal). Bodies are bounded
and time out, static files are looked up by name, and clients that go away are no error. On
loopback, foreign Host headers are refused (DNS rebinding); POSTs must be `application/json` (no
cross-site form posts); a Content-Security-Policy keeps the page to its own files.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import signal
import socket
import sys
import threading
import traceback
import webbrowser
from collections.abc import Callable
from functools import partialmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import torch

from vaelab.errors import RunError
from vaelab.explore.session import Explorer
from vaelab.runtime import signal_handlers

MAX_BODY_BYTES = 64 * 1024  # a 28×28×3 image as JSON floats is ~30 KB; nothing needs more
MAX_DEPTH = 8  # the deepest request, {"a": {"image": [...]}}, nests three levels
MAX_DIGITS = 18  # an integer literal longer than this is no index, count or seed
MAX_SAMPLES, MAX_STEPS = 64, 32
MAX_ABS_VALUE = 1e4  # latent values and map coordinates: far outside any trained code, still sane
# A JSON string, or an unterminated one up to the end: linear, whatever the body holds.
STRINGS = re.compile(r'(?s)"(?:[^"\\]|\\.?)*+(?:"|\Z)')
DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in CONTENT_TYPES)
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}  # on every answer
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Handler = Callable[[Explorer, dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _integer_literal(text: str) -> int:
    if (digits := len(text.lstrip("-"))) > MAX_DIGITS:
        raise ApiError(400, f"request body holds a {digits}-digit integer; no field takes one")
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


def image(ex: Explorer, value: Any, name: str) -> torch.Tensor:
    """A flat list of C·H·W pixel values in [0, 1] (row-major, channel first) → (1, C, H, W)."""
    c, h, w = ex.images.shape[1:]
    n = c * h * w
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
        raise ApiError(
            400, f"'{name}' must be a flat list of {n} numbers in [0, 1] ({c}×{h}×{w}), got {got}"
        )
    return vector(value, name, n, 0.0, 1.0).float().view(1, c, h, w)


def _index(ex: Explorer, value: Any, name: str) -> int:
    return integer(value, name, 0, len(ex.images) - 1)


def code_of(ex: Explorer, run: int, kind: str, value: Any, name: str) -> torch.Tensor:
    """A code (nz,) given as a test image's index, a map point, a code or an image."""
    if kind == "index":
        return ex.runs[run].codes[_index(ex, value, name)]
    if kind == "point":
        return ex.runs[run].latent_map.to_code(vector(value, name, 2).view(1, 2)).view(-1)
    if kind == "code":
        return vector(value, name, ex.runs[run].model.latent_dim)
    return ex.code_of_image(run, image(ex, value, name))


def endpoint(ex: Explorer, run: int, value: Any, name: str) -> torch.Tensor:
    """An interpolation end: an object with one of the kinds of `code_of` → code (nz,)."""
    kinds = ("index", "point", "code", "image")
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in kinds:
        raise ApiError(400, f"'{name}' must be an object with exactly one of {', '.join(kinds)}")
    kind, v = next(iter(value.items()))
    return code_of(ex, run, kind, v, f"{name}.{kind}")


# Each handler gets a request whose fields its `Route` has checked against the table below, its
# `run` already a valid run index.
def post_decode(ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    if ("point" in body) == ("code" in body):
        raise ApiError(400, "give exactly one of 'point' (map x, y) or 'code' (nz numbers)")
    kind = "point" if "point" in body else "code"
    return ex.decode(body["run"], code_of(ex, body["run"], kind, body[kind], kind))


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
    return ex.encode(body["run"], image(ex, body["image"], "image"), center)


class Route(NamedTuple):
    method: str
    handler: Handler
    required: tuple[str, ...] = ("run",)
    optional: tuple[str, ...] = ()

    def __call__(self, ex: Explorer, body: dict[str, Any]) -> dict[str, Any]:
        """The handler's answer, once the request's fields are checked."""
        missing = sorted(set(self.required) - body.keys())
        if missing:
            raise ApiError(400, f"missing field(s) {', '.join(missing)}")
        accepted = ", ".join(sorted({*self.required, *self.optional}))
        unknown = sorted(body.keys() - {*self.required, *self.optional})
        if unknown:
            raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; accepted: {accepted:.200}")
        if "run" in body:
            body = {**body, "run": integer(body["run"], "run", 0, len(ex.runs) - 1)}
        return self.handler(ex, body)


ROUTES = {
    "/api/runs": Route("GET", lambda ex, _: ex.info, ()),
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


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed)."""
    host = host.strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ExploreHandler(BaseHTTPRequestHandler):
    server_version = "vaelab-explore"
    protocol_version = "HTTP/1.1"  # keep-alive: a hover sends many small requests
    # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for the
    # client's delayed ACK (~40 ms on Linux), which measured as a 48 ms decode of 2 ms work.
    disable_nagle_algorithm = True
    # A client that stops sending (or an idle keep-alive connection) frees its thread after this.
    timeout = 60  # s
    server: ExploreServer

    def _dispatch(self, method: str | None = None) -> None:
        method = method or self.command  # PUT, DELETE...: answered 405 below
        try:
            # Read (bounded) any body first: an unread body would be parsed as the next request.
            raw = self._read_body() if method == "POST" else b""
            if method not in ("GET", "POST"):
                self.close_connection = True  # such a request's body is never read
            self._check_host()
            url = urlsplit(self.path)
            api = url.path.startswith("/api/")
            if api and url.path not in ROUTES:
                raise ApiError(404, f"no API route {url.path:.200}; routes: {', '.join(ROUTES)}")
            if not (api or url.path == "/" or url.path.startswith("/static/")):
                raise ApiError(404, f"nothing at {url.path:.80}; the app is at /, the API at /api/")
            accepted = ROUTES[url.path].method if api else "GET"
            if method != accepted:
                raise ApiError(405, f"{url.path:.100} accepts {accepted}, not {method}")
            if api:
                data = parse_json_object(raw) if method == "POST" else self._query(url.query)
                self._send_json(200, ROUTES[url.path](self.server.explorer, data))
                return
            # Looked up by name: no client path reaches the disk.
            name = unquote(url.path.removeprefix("/static/")) if url.path != "/" else "index.html"
            if name not in STATIC_FILES:
                raise ApiError(
                    404, f"no static file {url.path:.100}; the page's files: {STATIC_FILES}"
                )
            path = STATIC_DIR / name
            csp = {"Content-Security-Policy": CSP} if path.suffix == ".html" else {}
            extra = {"Cache-Control": "no-cache", **csp}
            self._send(200, path.read_bytes(), CONTENT_TYPES[path.suffix], extra)
        except ApiError as e:
            self._send_json(e.status, {"error": str(e)})
        except ConnectionError:
            self.close_connection = True  # the client went away mid-request: nobody to answer
        except Exception:  # a bug: the traceback to the terminal, no detail to the client
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"error": "internal error"})

    do_GET = do_HEAD = partialmethod(_dispatch, "GET")  # HEAD: `_send` omits the body
    do_POST = partialmethod(_dispatch, "POST")
    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def _check_host(self) -> None:
        """Behind a loopback bind, only loopback Host names (defeats DNS rebinding)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            raise ApiError(400, "a request carries one Host header, this one has several")
        # Its name: '127.0.0.1:8765' → '127.0.0.1', '[::1]:8765' → '::1'.
        host = hosts[0] if hosts else ""
        if host.startswith("["):
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.rsplit(":", 1)[0]
        if self.server.loopback_only and not is_loopback(host):
            raise ApiError(403, f"Host {host!r:.60} refused: the explorer answers loopback only")

    def _query(self, query: str) -> dict[str, Any]:
        parsed = parse_qs(query, keep_blank_values=True)
        repeated = [k for k, v in parsed.items() if len(v) > 1]
        if repeated:
            raise ApiError(400, f"query parameter(s) given twice: {', '.join(repeated):.200}")
        # query strings carry text: a few ASCII digits are an integer
        return {k: int(v[0]) if DIGITS.fullmatch(v[0]) else v[0] for k, v in parsed.items()}

    def _read_body(self) -> bytes:
        keep_alive = not self.close_connection
        self.close_connection = True  # until the whole body is read: unread, it ends the connection
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "send the body with a Content-Length, not a Transfer-Encoding")
        length_text = ", ".join(self.headers.get_all("Content-Length") or [])  # one, or refused
        if not length_text:
            raise ApiError(411, "POST requests need a Content-Length header")
        if not re.fullmatch(r"[0-9]{1,12}", length_text.strip()):
            raise ApiError(400, f"Content-Length {length_text!r:.40} is not a byte count")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"request body of {length} bytes exceeds {MAX_BODY_BYTES} bytes")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            raise ApiError(
                408, f"the request body did not arrive within {self.timeout:g} s"
            ) from None
        if len(raw) != length:
            raise ApiError(400, f"the body ended after {len(raw)} of {length} bytes")
        self.close_connection = not keep_alive
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(
                415, f"Content-Type must be application/json, got {ctype or 'none'!r:.60}"
            )
        return raw

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        headers = {"Content-Type": ctype, "Content-Length": str(len(body)), **HEADERS, **extra}
        if self.close_connection:
            headers["Connection"] = "close"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method...) as JSON too."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # a status line, even where http.server assumed 0.9
        phrase = self.responses.get(code, ("error",))[0]
        self._send_json(code, {"error": f"{phrase}: {message or explain or 'request refused'}"})

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True  # in-flight requests never keep Ctrl-C from stopping the server
    allow_reuse_address = True
    # The listen backlog: with socketserver's default of 5, 47 of 500 requests sent from 50
    # threads were reset; a page load alone opens a burst of connections.
    request_queue_size = 128

    def __init__(self, explorer: Explorer, host: str, port: int, verbose: bool = False) -> None:
        """A bound server (port 0: a free port, see `url`); call serve_forever()."""
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.explorer = explorer
        self.verbose = verbose
        self.loopback_only = is_loopback(host)
        try:
            super().__init__((host, port), ExploreHandler)
        except OSError as e:
            hint = "pass --port 0 for a free port, or another --port N" if port else "check --host"
            raise RunError(f"cannot listen on {host}:{port} ({e.strerror or e}); {hint}") from None
        bound, port = self.server_address[:2]
        shown = "127.0.0.1" if bound in ("", "0.0.0.0") else str(bound)
        self.url = f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (reset, closed mid-answer, timed out) is no server error."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def serve(explorer: Explorer, host: str, port: int, *, open_browser: bool, verbose: bool) -> int:
    """Serve until Ctrl-C (or SIGTERM); returns 0 after a clean stop."""
    if not is_loopback(host):
        print(
            f"vaelab: warning: serving on {host}, reachable from other machines; the explorer "
            "has no authentication, so bind 127.0.0.1 (the default) unless you trust the network",
            file=sys.stderr,
        )
    server = ExploreServer(explorer, host, port, verbose)
    print(
        f"vaelab explore: serving {len(explorer.runs)} run(s) at {server.url}  (Ctrl-C stops)",
        flush=True,
    )
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    # Both signals stop the server, whatever this process inherited: a shell starts background
    # jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt.
    try:
        with signal_handlers((signal.SIGINT, signal.SIGTERM), signal.default_int_handler):
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("vaelab explore: stopped", flush=True)
    finally:
        server.server_close()
    return 0
