"""The study's β search on an Optuna study: recorded in STUDY_DIR/search.db by default, shared
with `vaelab study worker` processes over SQLite or a throwaway PostgreSQL server, a SIGKILLed
worker's trial retried, and a study of the same name with another definition refused.

The search stage alone runs here (`BetaSearch.run`), on tiny budgets; tests/test_study.py runs
the whole `vaelab study` command."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from vaelab.study import make_config
from vaelab.study.runs import RunBook
from vaelab.study.schema import to_json
from vaelab.study.search import POINT_ATTR, RUN_ATTR, BetaSearch, SearchPlacement
from vaelab.tune import halving
from vaelab.tune.storage import normalise_url

pytestmark = pytest.mark.slow


def tiny(out: Path, **overrides: Any):
    """The smoke preset cut to seconds per trial: 3 decades, η = 2, 4 trials in all."""
    values = dict(
        limit_train=256,
        limit_val=64,
        trial_limit_train=128,
        selection_limit=100,
        selection_samples=100,
        eval_limit=100,
        refine=False,
        heartbeat_interval=1,
        grace_period=3,
    )
    return make_config("smoke", out=str(out), **{**values, **overrides})


def run_search(cfg, placement: SearchPlacement | None = None):
    book = RunBook(cfg)
    search = BetaSearch(book, placement or SearchPlacement(threads=1))
    queue = search.open_queue()
    search.start(queue)
    return book, queue, to_json(search.run(queue))


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=normalise_url(url)).get_trials()


def start_worker(url: str, name: str, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = ["study", "worker", "--storage", url, "--name", name, "--out", str(out), *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "vaelab", *cmd, "--threads", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_joined(proc: subprocess.Popen, out: Path) -> None:
    """Until the worker's log says it joined (it then polls the queue every second)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any("joined β search" in p.read_text() for p in (out / "logs").glob("worker-*.log")):
            return
        time.sleep(0.1)
    raise AssertionError(proc.communicate()[1][-3000:])


def points(search: dict[str, Any]) -> set[tuple[float, int]]:
    return {(float(b), r["rung"]) for r in search["rungs"] for b in r["selection_loss"]}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, mnist_arrays, session_home):
    """The default placement: one process, sqlite:///STUDY_DIR/search.db."""
    with pytest.MonkeyPatch.context() as mp:  # restored after the module's setup
        mp.setenv("VAELAB_HOME", str(session_home))
        out = tmp_path_factory.mktemp("search") / "s"
        book, queue, search = run_search(tiny(out))
        return out, book, queue, search


def test_default_storage_records_every_trial_and_the_choice(baseline):
    out, book, queue, search = baseline
    assert search["storage"] == f"sqlite:///{out.resolve() / 'search.db'}"
    assert search["study_name"] == queue.name and queue.name.startswith("smoke-")
    trials = trials_of(search["storage"], queue.name)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(trials) == len(points(search)) == 4  # 3 decades, then ⌊3/2⌋ = 1 at rung 1
    cfg = book.cfg
    for t in trials:
        b, r = t.user_attrs[POINT_ATTR]
        assert t.params == {"beta": b, "rung": r}
        entry = t.user_attrs[RUN_ATTR]
        assert entry == {**to_json(book.runs[entry["name"]]), "dir": entry["dir"]}
        assert entry["name"] == f"beta_{b:g}_r{r}" and entry["dir"] == f"runs/{entry['name']}"
        loss = halving.selection_loss(entry["eval"], cfg.min_recon_accuracy, cfg.min_class_entropy)
        assert t.value == loss == search["rungs"][r]["selection_loss"][f"{b:g}"]
        assert t.user_attrs["pid"] == os.getpid() and t.user_attrs["wall_time_s"] > 0
        assert (out / entry["dir"] / "DONE").is_file()
    # the choice: the best of rung 0 goes on, and is the β promoted into the last rung
    r0 = search["rungs"][0]["selection_loss"]
    best = min(r0, key=lambda b: (r0[b], float(b)))
    assert search["rungs"][0]["promoted"] == [float(best)] == [search["chosen_beta"]]
    assert queue.finished()


def test_a_rerun_reuses_the_recorded_trials(baseline, capfd):
    out, _, queue, search = baseline
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    _, _, again = run_search(tiny(out))
    assert again["chosen_beta"] == search["chosen_beta"]
    assert again["rungs"] == search["rungs"]
    assert len(trials_of(search["storage"], queue.name)) == 4  # nothing queued again
    err = capfd.readouterr().err
    assert err.count("recorded in the study storage") == 4 and "training" not in err
    assert all(p.stat().st_mtime_ns == ns for p, ns in stamps.items() if p.exists())


def shared_search(tmp_path: Path, url: str, baseline) -> None:
    """A coordinator and one `vaelab study worker` process (another --out, as on another
    machine) share the search; same trials and choice as the one-process search."""
    cfg = tiny(tmp_path / "coordinator")
    book = RunBook(cfg)
    beta_search = BetaSearch(book, SearchPlacement(storage=url, name="shared", threads=1))
    queue = beta_search.open_queue()
    worker = start_worker(url, "shared", tmp_path / "worker")
    submit = queue.submit

    def submit_then_let_the_worker_take_one(points):
        # A tiny trial trains in about a second: with the first batch queued, the coordinator
        # waits until the worker has taken a trial, or it may train them all on a fast machine.
        submit(points)
        queue.submit = submit
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if any(t.user_attrs.get("pid") == worker.pid for t in trials_of(url, "shared")):
                return
            time.sleep(0.05)
        raise AssertionError("the worker took no trial of the first batch")

    queue.submit = submit_then_let_the_worker_take_one
    try:
        wait_joined(worker, tmp_path / "worker")
        search = to_json(beta_search.run(queue))
        _, err = worker.communicate(timeout=120)  # it stops: the search is finished
    finally:
        worker.kill()
    assert worker.returncode == 0, err[-3000:]
    assert "β search 'shared' is finished" in err
    trials = trials_of(url, "shared")
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 4
    pids = {t.user_attrs["pid"] for t in trials}
    assert pids == {os.getpid(), worker.pid}  # both processes trained trials
    for t in trials:
        mine = t.user_attrs["pid"] == os.getpid()
        root = (tmp_path / ("coordinator" if mine else "worker")).resolve()
        assert Path(t.user_attrs["run_dir"]).parent == root / "runs"
        assert t.user_attrs["host"] and (Path(t.user_attrs["run_dir"]) / "DONE").is_file()
    expected = baseline[3]
    assert search["chosen_beta"] == expected["chosen_beta"]
    assert points(search) == points(expected)
    for r, r_ref in zip(search["rungs"], expected["rungs"], strict=True):
        for b, v in r["selection_loss"].items():
            assert math.isclose(v, r_ref["selection_loss"][b], rel_tol=1e-6), (b, r["rung"])
    # the worker's runs are recorded with where they live (another machine's directory)
    worker_runs = [n for n, e in book.runs.items() if e.dir.startswith("/")]
    assert worker_runs and all(book.runs[n].host for n in worker_runs)


def test_a_worker_process_shares_the_sqlite_search(tmp_path, baseline):
    shared_search(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}", baseline)


def test_a_worker_process_shares_a_postgresql_search(tmp_path, baseline, postgres_url):
    shared_search(tmp_path, postgres_url, baseline)


def test_two_local_workers_choose_the_same_beta(tmp_path, baseline):
    _, queue, search = run_search(tiny(tmp_path / "s"), SearchPlacement(workers=2, threads=1))
    assert search["chosen_beta"] == baseline[3]["chosen_beta"]
    assert points(search) == points(baseline[3])
    trials = trials_of(search["storage"], queue.name)
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 4
    logs = list((tmp_path / "s" / "logs").glob("worker-*.log"))
    assert len(logs) == 1 and "is finished" in logs[0].read_text()  # the extra one stopped


def test_a_killed_workers_trial_is_retried_from_its_checkpoint(tmp_path, mnist_arrays):
    """The worker is SIGKILLed after its trial's first epoch (of 2): its heartbeat stops, the
    coordinator fails the trial after the grace period, queues it again and resumes it in the
    worker's run directory (same host)."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    cfg = tiny(tmp_path / "coordinator", trial_epochs=2)
    book = RunBook(cfg)
    beta_search = BetaSearch(book, SearchPlacement(storage=url, name="kill", threads=1))
    queue = beta_search.open_queue()
    worker_out = tmp_path / "worker"
    worker = start_worker(url, "kill", worker_out)
    killed: list[Path] = []

    def kill_mid_trial() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and worker.poll() is None:
            ckpts = list((worker_out / "runs").glob("*/checkpoints/last.pt"))
            if ckpts:
                worker.send_signal(signal.SIGKILL)
                killed.append(ckpts[0].parents[1])
                return
            time.sleep(0.02)

    try:
        wait_joined(worker, worker_out)
        watcher = threading.Thread(target=kill_mid_trial)
        watcher.start()
        search = to_json(beta_search.run(queue))
        watcher.join()
    finally:
        worker.kill()
        worker.wait()
    assert killed, "the worker never took a trial"
    run_dir = killed[0].resolve()
    trials = trials_of(url, "kill")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["run_dir"] == str(run_dir)
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params == failed[0].params and retry[0].user_attrs["pid"] == os.getpid()
    assert retry[0].user_attrs["run_dir"] == str(run_dir)  # resumed where it was
    assert "resumed from" in (run_dir / "train.log").read_text()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == len(points(search)) == 4


def test_same_name_other_definition_is_refused(tmp_path, mnist_arrays):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = RunBook(make_config("smoke", out=str(tmp_path / "a")))
    BetaSearch(first, SearchPlacement(url, "x")).open_queue()
    out = tmp_path / "b"
    flags = ["--out", str(out), "--storage", url, "--name", "x"]
    r = subprocess.run(
        [sys.executable, "-m", "vaelab", "study", "--preset", "smoke", "--seed", "1", *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip()
    assert "\n" not in err and err.startswith("vaelab: error: study 'x'")
    assert "different seed;" in err and "--name NEW" in err
    assert not (out / "runs").exists()  # nothing trained
