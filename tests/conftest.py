"""Shared fixtures. Tests never reach the network except PyPI (the MNIST wheel), and use a
private VAELAB_HOME so they neither read nor damage the user's cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaelab.data.sources import FILES, encode_idx

os.environ["VAELAB_MIRRORS"] = "none"  # no public mirror is ever contacted from the tests
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker (set before torch loads; its subprocesses inherit it): two
    # workers with PyTorch's default of a thread per core oversubscribe the cores, and OpenMP's
    # spinning threads then waste most of what the second worker gains
    os.environ["OMP_NUM_THREADS"] = "1"
# The user's own cache, read-only: tests that check artefacts `make study` builds look here.
USER_HOME = Path(os.environ.get("VAELAB_HOME") or Path.home() / ".cache" / "vaelab")


# Session fixtures that build something expensive (a study, trained runs, a PostgreSQL server):
# under pytest-xdist (`make test` runs two workers) every test that uses one goes to the same
# worker, so each is built once per `make test`, not once per worker.
SHARED_FIXTURES = ("smoke_study", "tiny_runs", "postgres_url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests sharing an expensive fixture share an xdist group. CUDA-marked tests skip where there
    is no GPU: a plain skip even under VAELAB_REQUIRE_ALL, since no CI machine has one
    (benchmarks/gpu_check.sh runs them on a GPU machine)."""
    import torch

    skip_cuda = None
    if not torch.cuda.is_available():
        skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs these)")
    for item in items:
        used = [f for f in SHARED_FIXTURES if f in getattr(item, "fixturenames", ())]
        # the others stay with their file: its module fixtures (a browser page, a picture
        # folder) are built once, and its tests run in the order they are written
        item.add_marker(pytest.mark.xdist_group(used[0] if used else item.nodeid.split("::")[0]))
        if skip_cuda is not None and item.get_closest_marker("cuda"):
            item.add_marker(skip_cuda)


# The >= 99 % gate (test_evaluate) needs the standard classifier: 4 epochs on 60,000 images, most
# of two minutes. A serial session leaves one of the two cores idle most of the time (about 1.1
# cores busy on average), so it starts that training with the first test, in its own one-thread
# process and home; the gate waits for it and re-measures what it wrote.
GATE = "test_evaluate.py::test_reduced_classifier_trains_and_the_standard_one_reaches_99_percent"


@dataclass
class EarlyJob:
    proc: subprocess.Popen
    home: Path  # its own VAELAB_HOME: nothing the other tests damage or lock on purpose
    log: Path


EARLY: dict[str, EarlyJob] = {}


def _start_standard_classifier(session: pytest.Session, home: Path) -> None:
    from vaelab.evaluate.classifier import _path

    cached = (USER_HOME / "classifiers" / _path("mnist", "standard").name).is_file()
    selected = any(item.nodeid.endswith(GATE) for item in session.items)
    if cached or not selected or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the gate reads the user's copy; or not run; or xdist spreads the work already
    code = "import torch; torch.set_num_threads(1); from vaelab.evaluate import classifier; "
    code += "classifier.reference_classifier('mnist', variant='standard')"
    log = home / "standard_classifier.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "VAELAB_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    EARLY["standard_classifier"] = EarlyJob(proc, home, log)


@pytest.fixture(scope="session")
def session_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    _start_standard_classifier(request.session, tmp_path_factory.mktemp("early_home"))
    yield tmp_path_factory.mktemp("vaelab_home")
    for job in EARLY.values():  # still running when the gate failed early or was interrupted
        job.proc.kill()
        job.proc.wait()


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


# --------------------------------------------------------------------------- shared end-to-end runs
@dataclass(frozen=True)
class SmokeStudy:
    out: Path  # the study folder
    final_err: str  # stderr of the run that completed it


def _study_process(out: Path, home: Path, stderr: Any) -> subprocess.Popen:
    env = {**os.environ, "VAELAB_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "vaelab", "study", "--preset", "smoke", "--out", str(out)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _kill_when(out: Path, home: Path, ready: Callable[[], bool]) -> None:
    """Run the study until `ready()`, then SIGKILL it: it must still be running then, and it
    must not have written study.json."""
    with open(out.parent / "killed.log", "a") as log:
        proc = _study_process(out, home, log)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert alive, (out.parent / "killed.log").read_text()[-2000:]
    assert not (out / "study.json").exists()


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory, mnist_arrays, session_home: Path) -> SmokeStudy:
    """`vaelab study --preset smoke` with bad luck, once per session: SIGKILLed inside its first
    training, during the first evaluation, inside the second training and inside the β search
    (after two rung-0 trials were trained and evaluated), then run to completion, which must
    reuse every run finished before the last kill without retraining or re-evaluating it.
    The study and fault tests read it (the report test adds its screenshots)."""
    out = tmp_path_factory.mktemp("smoke_study") / "s"
    runs = out / "runs"
    for ready in (
        lambda: (runs / "ae" / "metrics.jsonl").is_file(),  # inside the first training
        lambda: (runs / "ae" / "DONE").is_file(),  # trained, evaluation running
        lambda: (runs / "vae_beta0" / "checkpoints" / "last.pt").is_file(),
        lambda: (runs / "beta_1_r0" / "eval_selection.json").is_file(),  # in the β search
    ):
        _kill_when(out, session_home, ready)
    finished = ("ae", "vae_beta0", "vae_beta10", "beta_0.1_r0", "beta_1_r0")
    stamps = {
        p: p.stat().st_mtime_ns
        for name in finished
        for p in (runs / name).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }  # lock files record the pid
    final = _study_process(out, session_home, subprocess.PIPE)
    _, err = final.communicate(timeout=900)
    assert final.returncode == 0, err[-3000:]
    for name in finished:
        assert f"reusing {name} " in err
    for p, ns in stamps.items():  # finished runs were not retrained or re-evaluated
        assert p.stat().st_mtime_ns == ns, p
    return SmokeStudy(out, err)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, session_home: Path, mnist_arrays) -> dict[str, Path]:
    """The explorer tests' AE and VAE (tests/explore_helpers.py), trained once per session;
    tests read them and never write into them."""
    from tests.explore_helpers import train_tiny_runs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAELAB_HOME", str(session_home))
        return train_tiny_runs(tmp_path_factory.mktemp("tiny_runs"))
