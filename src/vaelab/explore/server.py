"""The explorer's HTTP server: Python's `http.server.ThreadingHTTPServer`, hardened.

Chosen over Starlette on uvicorn, which answered 13 of the survey's malformed requests in plain
text or not at all and adds seven dependencies (measured in docs/explorer.md). Every error is
JSON (a 500 says only "internal error"; the traceback goes to the terminal), bodies are bounded
and time out, static files are looked up by name, and clients that go away are no error. On
loopback, foreign Host headers are refused (DNS rebinding); POSTs must be `application/json` (no
cross-site form posts); a Content-Security-Policy keeps the page to its own files.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import socket
import sys
import threading
import traceback
import webbrowser
from functools import partialmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from vaelab.errors import RunError
from vaelab.explore import api
from vaelab.explore.api import MAX_BODY_BYTES, ApiError, parse_json_object
from vaelab.explore.session import Explorer
from vaelab.runtime import signal_handlers

READ_TIMEOUT_S = 60
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in CONTENT_TYPES)
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header: '127.0.0.1:8765' → '127.0.0.1', '[::1]:8765' → '::1'."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def static_file(url_path: str) -> Path:
    """The file / or /static/<name> names, looked up by name: no client path reaches the disk."""
    name = "index.html" if url_path == "/" else unquote(url_path.removeprefix("/static/"))
    if name not in STATIC_FILES:
        raise ApiError(404, f"no static file {url_path:.100}; the page's files: {STATIC_FILES}")
    return STATIC_DIR / name


class ExploreHandler(BaseHTTPRequestHandler):
    server_version = "vaelab-explore"
    protocol_version = "HTTP/1.1"  # keep-alive: a hover sends many small requests
    # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for the
    # client's delayed ACK (~40 ms on Linux), which measured as a 48 ms decode of 2 ms work.
    disable_nagle_algorithm = True
    # A client that stops sending (or an idle keep-alive connection) frees its thread after this.
    timeout = READ_TIMEOUT_S
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
            if url.path.startswith("/api/"):
                handler = api.route(method, url.path)
                data = parse_json_object(raw) if method == "POST" else self._query(url.query)
                self._send_json(200, handler(self.server.explorer, data))
            elif url.path == "/" or url.path.startswith("/static/"):
                if method != "GET":
                    raise ApiError(405, f"{url.path:.100} accepts GET, not {method}")
                path = static_file(url.path)
                csp = {"Content-Security-Policy": CSP} if path.suffix == ".html" else {}
                extra = {"Cache-Control": "no-cache", **csp}
                self._send(200, path.read_bytes(), CONTENT_TYPES[path.suffix], extra)
            else:
                raise ApiError(404, f"nothing at {url.path:.80}; the app is at /, the API at /api/")
        except ApiError as e:
            self._send_json(e.status, {"error": e.message})
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
        host = host_name(hosts[0] if hosts else "")
        if self.server.loopback_only and not is_loopback(host):
            raise ApiError(403, f"Host {host!r:.60} refused: the explorer answers loopback only")

    def _query(self, query: str) -> dict[str, Any]:
        parsed = parse_qs(query, keep_blank_values=True)
        repeated = [k for k, v in parsed.items() if len(v) > 1]
        if repeated:
            raise ApiError(400, f"query parameter(s) given twice: {', '.join(repeated):.200}")
        # query strings carry text: a few ASCII digits are an integer
        return {k: int(v[0]) if api.DIGITS.fullmatch(v[0]) else v[0] for k, v in parsed.items()}

    def _read_body(self) -> bytes:
        def refuse(status: int, message: str) -> ApiError:
            self.close_connection = True  # the body stays unread: end this connection
            return ApiError(status, message)

        if self.headers.get("Transfer-Encoding"):
            raise refuse(411, "send the body with a Content-Length, not a Transfer-Encoding")
        length_text = ", ".join(self.headers.get_all("Content-Length") or [])  # one, or refused
        if not length_text:
            raise refuse(411, "POST requests need a Content-Length header")
        if not re.fullmatch(r"[0-9]{1,12}", length_text.strip()):
            raise refuse(400, f"Content-Length {length_text!r:.40} is not a byte count")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise refuse(413, f"request body of {length} bytes exceeds {MAX_BODY_BYTES} bytes")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            raise refuse(
                408, f"the request body did not arrive within {self.timeout:g} s"
            ) from None
        if len(raw) != length:
            raise refuse(400, f"the body ended after {len(raw)} of {length} bytes")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(
                415, f"Content-Type must be application/json, got {ctype or 'none'!r:.60}"
            )
        return raw

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in extra.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
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

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else str(host)
        return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"

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
