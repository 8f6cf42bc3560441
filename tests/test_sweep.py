"""`vaelab sweep` end to end on real engines: local workers on SQLite, separate workers on a
throwaway PostgreSQL server, a SIGKILLed worker, re-runs, pruning and the report."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.sweep_helpers import SMOKE, run_cli, smoke, start_cli, write
from vaelab.config import available_cores
from vaelab.evaluate.keys import eval_keys
from vaelab.report.sweep import report
from vaelab.tune.sweep import run_sweep
from vaelab.tune.sweep_config import parse_sweep

pytestmark = pytest.mark.slow


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def _sqlite(out: Path) -> str:
    return f"sqlite:///{out / 'sweep.db'}"


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


@pytest.fixture(scope="module")
def sqlite_sweep(tmp_path_factory, mnist_arrays, session_home):
    """The README's command: 4 trials, 2 local workers, default SQLite storage."""
    with pytest.MonkeyPatch.context() as mp:  # restored after the module's setup
        mp.setenv("VAELAB_HOME", str(session_home))
        out = tmp_path_factory.mktemp("sweep") / "smoke"
        t0 = time.monotonic()
        r = run_cli("run", "--config", SMOKE, "--out", out, "--trials", "4", "--workers", "2")
        assert r.returncode == 0, r.stderr[-3000:]
        return out, r, time.monotonic() - t0


def test_two_local_workers_record_four_trials(sqlite_sweep):
    out, r, _ = sqlite_sweep
    study = _study(_sqlite(out), "smoke")
    assert _states(study) == ["COMPLETE"] * 4
    assert "4 complete" in r.stdout and "best trial" in r.stdout
    logs = sorted((out / "logs").glob("worker-*.log"))
    assert len(logs) == 2  # two processes, one log each
    threads = max(1, available_cores() // 2)
    ran = 0
    for log in logs:
        text = log.read_text()
        assert f"torch threads {threads})" in text
        ran += len(re.findall(r"trial \d+ complete", text))
    assert ran == 4
    for t in study.get_trials():
        run_dir = out / "trials" / str(t.number)
        assert t.user_attrs["run_dir"] == str(run_dir)
        assert (run_dir / "DONE").is_file() and t.user_attrs["host"]
        assert t.user_attrs["wall_time_s"] > 0
        ev = json.loads((run_dir / "eval.json").read_text())
        assert t.values == [ev["test/elbo"]]
        assert all(t.user_attrs[k] == v for k, v in ev.items())  # every eval.json number
        params = json.loads((run_dir / "config.json").read_text())
        assert params["beta"] == t.params["beta"] and 0.01 <= t.params["beta"] <= 10


def test_eval_keys_match_a_real_eval_json(sqlite_sweep):
    out, _, _ = sqlite_sweep
    ev = json.loads((out / "trials" / "0" / "eval.json").read_text())
    groups = ("reconstruction", "likelihood", "samples", "probes", "interpolation")
    steps = int(ev["interp/lerp/realism_step_1"] >= 0) and sum(
        k.startswith("interp/lerp/realism_step_") for k in ev
    )
    assert set(ev) == eval_keys("test", is_vae=True, latent_dim=8, groups=groups, steps=steps)


def test_rerun_continues_rather_than_restarts(sqlite_sweep):
    out, _, _ = sqlite_sweep
    stamps = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/eval.json")}
    r = run_cli("run", "--config", SMOKE, "--out", out, "--trials", "6")
    assert r.returncode == 0, r.stderr[-3000:]
    study = _study(_sqlite(out), "smoke")
    assert _states(study) == ["COMPLETE"] * 6
    assert all(p.stat().st_mtime_ns == ns for p, ns in stamps.items())  # untouched
    again = run_cli("run", "--config", SMOKE, "--out", out, "--trials", "6")
    assert again.returncode == 0 and "6 finished trials; 0 ran here" in again.stderr
    assert len(_study(_sqlite(out), "smoke").trials) == 6


def test_same_name_with_another_space_is_refused(sqlite_sweep, tmp_path):
    out, _, _ = sqlite_sweep
    other = write(
        tmp_path / "other.toml",
        smoke(space={"beta": {"type": "float", "low": 0.5, "high": 2.0}}),
    )
    r = run_cli("run", "--config", other, "--out", out, "--trials", "8")
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "\n" not in err and err.startswith("vaelab: error: study 'smoke'")
    assert "different space" in err and "--name NEW" in err


def test_report_of_the_real_sweep(sqlite_sweep):
    out, _, _ = sqlite_sweep
    r = run_cli("report", out)
    assert r.returncode == 0, r.stderr[-2000:]
    page = (out / "report" / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert "params_vs_test_elbo_max.png" in srcs
    assert all((out / "report" / s).is_file() for s in srcs)
    assert len(re.findall(r"^\d+\s+COMPLETE", r.stdout, re.M)) >= 4


def test_separate_workers_share_a_postgresql_study(postgres_url, tmp_path, mnist_arrays):
    """Two `vaelab sweep run` processes (as on two machines, each with its own directory)."""
    outs = [tmp_path / "machine_a", tmp_path / "machine_b"]
    args = ("--config", SMOKE, "--storage", postgres_url, "--trials", "4", "--name", "pg")
    procs = [start_cli("run", *args, "--out", o) for o in outs]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    study = _study(postgres_url.replace("postgresql://", "postgresql+psycopg://"), "pg")
    assert _states(study) == ["COMPLETE"] * 4  # exactly 4: the ask lock stops overshoot
    assert len({t.params["beta"] for t in study.trials}) == 4  # per-trial seeds: no repeats
    dirs = [d for o in outs for d in (o / "trials").glob("*") if (d / "eval.json").is_file()]
    assert sorted(int(d.name) for d in dirs) == [0, 1, 2, 3]
    assert {t.user_attrs["run_dir"] for t in study.trials} == {str(d) for d in dirs}
    r = run_cli("report", "--storage", postgres_url, "--name", "pg", "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "r" / "report.html").is_file()


def test_killed_worker_trial_is_retried_from_its_checkpoint(tmp_path, mnist_arrays):
    cfg = write(
        tmp_path / "kill.toml",
        smoke(
            sweep={"name": "kill", "trials": 2, "heartbeat_interval": 1, "grace_period": 3},
            train={"epochs": 4, "limit_train": 1024},
        ),
    )
    out = tmp_path / "out"
    first = start_cli("run", "--config", cfg, "--out", out)
    ckpt = out / "trials" / "0" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.poll() is None, first.communicate()[1][-3000:]
    assert not (out / "trials" / "0" / "DONE").exists()  # mid-trial: after epoch 1 of 4
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)

    r = run_cli("run", "--config", cfg, "--out", out)  # the same command, another worker
    assert r.returncode == 0, r.stderr[-3000:]
    trials = _study(_sqlite(out), "kill").get_trials()
    assert trials[0].state == TrialState.FAIL  # its heartbeat stopped
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials[0].params
    assert retries[0].user_attrs["run_dir"] == str(out / "trials" / "0")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    log = (out / "trials" / "0" / "train.log").read_text()
    assert "resumed from" in log  # continued from the checkpoint, not retrained
    assert "(retry of trial 0)" in r.stderr
    rep = run_cli("report", out)
    assert re.search(r"^0\s+FAIL .*worker lost \(no heartbeat\); retried as \d", rep.stdout, re.M)


def test_pruner_stops_a_hopeless_trial(tmp_path, mnist_arrays, capsys):
    """Constructed case: grid point 0 learns (lr 3e-3), point 1 barely moves (lr 1e-6), so after
    epoch 1 its val/recon is above the median of the finished trial: pruned at once."""
    cfg = parse_sweep(
        smoke(
            sweep={"name": "prune", "trials": 2},
            train={"epochs": 3, "batch_size": 16},
            space={"lr": {"type": "grid", "values": [3e-3, 1e-6]}},
            objective={"key": "test/sse", "direction": "minimize"},
            pruner={"kind": "median", "n_startup_trials": 1, "metric": "val/recon"},
        )
    )
    result = run_sweep(cfg, tmp_path / "out")
    study = _study(_sqlite(tmp_path / "out"), "prune")
    good, bad = study.get_trials()
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.PRUNED)
    assert bad.params == {"lr": 1e-6} and list(bad.intermediate_values) == [1]
    assert bad.intermediate_values[1] > good.intermediate_values[1]
    assert result.counts == {"COMPLETE": 1, "PRUNED": 1}
    run = tmp_path / "out" / "trials" / "1"
    assert not (run / "DONE").exists() and not (run / "eval.json").exists()
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(epochs) == 1
    assert "trial 1 pruned: val/recon" in capsys.readouterr().err


def test_multi_objective_sweep_reports_its_pareto_front(tmp_path, mnist_arrays):
    cfg = parse_sweep(
        smoke(
            sweep={"name": "two", "trials": 2},
            objective=[
                {"key": "test/elbo", "direction": "maximize"},
                {"key": "samples/fd", "direction": "minimize"},
            ],
            evaluation={"groups": ["likelihood", "samples"]},  # what the objectives need
        )
    )
    result = run_sweep(cfg, tmp_path / "out")
    assert result.counts == {"COMPLETE": 2}
    trials = _study(_sqlite(tmp_path / "out"), "two").trials

    def dominates(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> bool:
        (elbo_a, fd_a), (elbo_b, fd_b) = a.values, b.values  # maximise ELBO, minimise FD
        return elbo_a >= elbo_b and fd_a <= fd_b and (elbo_a, fd_a) != (elbo_b, fd_b)

    front = [t for t in trials if not any(dominates(o, t) for o in trials)]
    assert result.best == [
        {
            "number": t.number,
            "values": t.values,
            "params": t.params,
            "run_dir": t.user_attrs["run_dir"],
        }
        for t in front
    ]
    for t in trials:
        ev = json.loads(Path(t.user_attrs["run_dir"], "eval.json").read_text())
        assert t.values == [ev["test/elbo"], ev["samples/fd"]]
        assert set(ev) == eval_keys(
            "test", is_vae=True, latent_dim=8, groups=("likelihood", "samples")
        )
    files = report(tmp_path / "out")
    md = files.markdown.read_text()
    assert "## Pareto front" in md and "params_vs_samples_fd_min.png" in md
    assert '"key": "samples/fd"' in md  # the definition block
