"""Shared by the explorer tests: tiny trained runs and a small HTTP client."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig
from vaelab.explore.server import ExploreServer
from vaelab.explore.session import Explorer
from vaelab.train.loop import train

TINY = dict(
    limit_train=256,
    limit_val=64,
    batch_size=32,
    log_every=4,
    channels=[8, 16, 32, 32],
    epochs=1,
    latent_dim=8,
)


def train_tiny_runs(root: Path) -> dict[str, Path]:
    """An AE and a VAE (β = 1), one epoch on 256 MNIST images each (seconds)."""
    runs = {"ae": root / "ae", "vae": root / "vae"}
    train(TrainConfig(model="ae", **TINY), runs["ae"], tensorboard=False)
    train(TrainConfig(model="vae", beta=1.0, **TINY), runs["vae"], tensorboard=False)
    return runs


def start_background(explorer: Explorer) -> tuple[ExploreServer, str]:
    """A server on a free loopback port answering from a daemon thread: (server, url).
    Stop it with `server.shutdown(); server.server_close()`."""
    server = ExploreServer(explorer, "127.0.0.1", 0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return server, server.url


class Client:
    """Raw HTTP against the server, so tests control every header and byte."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.split("//")[1].rstrip("/").split(":")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        try:
            sent = {k.lower() for k in (headers or {})}
            conn.putrequest(method, path, skip_host="host" in sent, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None and "content-length" not in sent:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, Any]:
        status, _, data = self.request("GET", path)
        return status, json.loads(data)

    def post(self, path: str, obj: Any) -> tuple[int, Any]:
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        status, _, data = self.request("POST", path, raw, {"Content-Type": "application/json"})
        return status, json.loads(data)
