"""Sweep TOML validation (one-line ConfigErrors before any work), the grid sampler, and the
report on a constructed study (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from tests.sweep_helpers import SMOKE, smoke, write
from vaelab.cli import main
from vaelab.errors import ConfigError
from vaelab.report.sweep import write_report
from vaelab.tune.storage import definition_hashes
from vaelab.tune.sweep import make_sampler, resolve_trials
from vaelab.tune.sweep_config import SweepConfig, load_sweep, parse_sweep


def test_smoke_example_parses():
    cfg = load_sweep(SMOKE)
    assert cfg.name == "smoke" and cfg.trials == 4
    assert [(p.name, p.type, p.log) for p in cfg.space] == [("beta", "float", True)]
    assert cfg.directions == ["maximize"]
    assert cfg.eval_config("cpu").classifier == "smoke"
    assert cfg.trial_config({"beta": 0.5}).beta == 0.5


BAD = [
    ({"space": {}}, "no parameters"),
    (
        {"space": {"beta": {"type": "loguniform", "low": 0.1, "high": 1}}},
        "should be 'float', 'int'",
    ),
    ({"space": {"beta": {"type": "float", "low": 0, "high": 1, "log": True}}}, "log scale"),
    ({"space": {"beta": {"type": "float", "low": 2, "high": 1}}}, "low < high"),
    ({"space": {"latent_dim": {"type": "int", "low": 0, "high": 8}}}, "latent_dim"),
    ({"space": {"sizes": {"type": "int", "low": 1, "high": 8}}}, "unknown config field(s) 'sizes'"),
    ({"space": {"beta": {"type": "grid", "values": []}}}, "non-empty list"),
    (
        {
            "space": {"model": {"type": "categorical", "choices": ["ae", "vae"]}},
            "train": {"model": None},
        },
        "only for VAE",
    ),
    ({"objective": {"key": "test/elbow", "direction": "maximize"}}, "not an eval.json key"),
    ({"objective": {"key": "samples/fd", "direction": "up"}}, "'minimize' or 'maximize'"),
    ({"train": {"epochs": 0}}, "epochs"),
    ({"train": {"beta": 1.0}}, "also set in [train]"),
    ({"evaluation": {"iw_samples": 0}}, "iw_samples"),
    ({"evaluation": {"colour": "red"}}, "unknown key(s) 'colour'"),
    ({"evaluation": {"groups": ["samples", "vibes"]}}, "'groups::1': should be 'reconstruction'"),
    (
        {
            "objective": {"key": "probe/knn_acc", "direction": "maximize"},
            "evaluation": {"groups": ["reconstruction", "samples"]},
        },
        "needs the 'probes' group",
    ),
    (
        {
            "objective": {"key": "test/iw_nll", "direction": "minimize"},
            "evaluation": {"groups": ["reconstruction", "samples"]},
        },
        "needs the 'likelihood' group",
    ),
    ({"pruner": {"kind": "asha"}}, "should be 'none', 'median'"),
    ({"pruner": {"metric": "test/elbo"}}, "should be 'val/loss'"),
    ({"pruner": {"kind": "hyperband", "min_resource": 1}}, "no rung"),
    ({"sweep": {"grace_period": 1, "heartbeat_interval": 2}}, "must exceed"),
    ({"sweep": {"trials": 0}}, "'sweep::trials': should be greater than or equal to 1"),
    (
        {
            "objective": [
                {"key": "test/elbo", "direction": "maximize"},
                {"key": "samples/fd", "direction": "minimize"},
            ],
            "pruner": {"kind": "median"},
        },
        "cannot prune multi-objective",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m for _, m in BAD])
def test_invalid_sweeps_are_one_line_config_errors(tmp_path, capsys, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_sweep(smoke(**change))
    path = write(tmp_path / "bad.toml", smoke(**change))
    code = main(["sweep", "run", "--config", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("vaelab: error: ") and "sweep config" in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_unknown_table_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown sweep config key\(s\) 'trainer'"):
        parse_sweep({**smoke(), "trainer": {}})
    (tmp_path / "x.toml").write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sweep(tmp_path / "x.toml")
    (tmp_path / "y.toml").write_bytes(b"[sweep]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_sweep(tmp_path / "y.toml")


def test_trial_count_comes_from_flag_config_or_grid():
    cfg = parse_sweep(smoke())
    assert resolve_trials(cfg, None) == 4 and resolve_trials(cfg, 7) == 7
    grid = smoke(space={"seed": {"type": "grid", "values": [0, 1, 2]}})
    del grid["sweep"]["trials"]
    assert resolve_trials(parse_sweep(grid), None) == 3
    no_trials = smoke()
    del no_trials["sweep"]["trials"]
    with pytest.raises(ConfigError, match="--trials N"):
        resolve_trials(parse_sweep(no_trials), None)


def test_grid_parameters_cycle_through_their_product_beside_sampled_ones():
    cfg = parse_sweep(
        smoke(
            space={
                "seed": {"type": "grid", "values": [0, 1]},
                "latent_dim": {"type": "grid", "values": [4, 8, 16]},
                "beta": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
            },
            train={"latent_dim": None},
        )
    )
    study = optuna.create_study(sampler=make_sampler(cfg))
    points = []
    for _ in range(12):
        t = study.ask()
        params = {p.name: t.suggest_categorical(p.name, p.choices) for p in cfg.space[:2]}
        beta = t.suggest_float("beta", 0.1, 10.0, log=True)
        assert 0.1 <= beta <= 10.0
        points.append((params["seed"], params["latent_dim"]))
        study.tell(t, beta)
    # each of the 6 grid points exactly twice, the first 6 trials covering all of them
    assert len(set(points[:6])) == 6 and sorted(points) == sorted(points[:6] * 2)


def _constructed_study(url: str) -> optuna.Study:
    """β and lr known to shape the objective; one failed and one pruned trial."""
    study = optuna.create_study(storage=url, study_name="made", direction="minimize")
    study.set_user_attr(
        "vaelab:definition", {"objectives": [{"key": "samples/fd", "direction": "minimize"}]}
    )
    dists = {
        "beta": optuna.distributions.FloatDistribution(0.01, 10, log=True),
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    grid = [(beta, lr) for lr in (1e-3, 5e-3) for beta in (0.01, 0.1, 1.0, 10.0)]
    for i, (beta, lr) in enumerate(grid):  # β shapes the objective, lr barely
        study.add_trial(
            optuna.create_trial(
                params={"beta": beta, "lr": lr},
                distributions=dists,
                value=(beta - 1.0) ** 2 + 0.01 * i,
                user_attrs={"wall_time_s": 1.5, "host": "h", "run_dir": f"/x/trials/{i}"},
                intermediate_values={1: 3.0, 2: 2.0},
            )
        )
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"beta": 5.0, "lr": 1e-4},
            distributions=dists,
            intermediate_values={1: 9.0},
            user_attrs={"pruner_metric": "val/loss"},
        )
    )
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params={"beta": 2.0, "lr": 1e-4},
            distributions=dists,
            user_attrs={"error": "non-finite val/loss"},
        )
    )
    return study


def test_report_renders_table_best_trial_and_figures(tmp_path: Path):
    study = _constructed_study(f"sqlite:///{tmp_path / 'made.db'}")
    files = write_report(study, tmp_path / "report")
    page = files.html.read_text()
    assert "<script" not in page and "http" not in page  # offline
    srcs = re.findall(r'<img src="([^"]+)"', page)
    names = {Path(s).name for s in srcs}
    assert {"params_vs_samples_fd_min.png", "importance_samples_fd_min.png"} <= names
    assert "learning_curves.png" in names
    for src in srcs:
        assert not Path(src).is_absolute() and (files.html.parent / src).stat().st_size > 1000
    md = files.markdown.read_text()
    for src in srcs:
        assert f"]({src})" in md
    # the best trial is β = 1 (objective (β-1)² + 0.01·i, lowest i = 2)
    assert "Trial 2: samples/fd (min) = 0.02" in md
    ranked = re.search(r"separates the best trials \((\w+) ([\d.]+), (\w+) ([\d.]+)\)", md)
    assert ranked and ranked.group(1, 3) == ("beta", "lr")
    assert float(ranked.group(2)) > float(ranked.group(4))
    assert "PRUNED" in files.table and "pruned after epoch 1" in files.table
    assert "non-finite val/loss" in files.table
    rows = files.csv.read_text().splitlines()
    assert len(rows) == 1 + 10 and rows[0].startswith("trial,state,beta,lr,samples/fd (min)")


def test_report_explains_missing_importance(tmp_path: Path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'one.db'}", study_name="one")
    dist = {"beta": optuna.distributions.FloatDistribution(0.1, 10, log=True)}
    for b in (0.1, 1.0):
        study.add_trial(optuna.create_trial(params={"beta": b}, distributions=dist, value=b))
    files = write_report(study, tmp_path / "r")
    assert "importance compares parameters" in files.markdown.read_text()
    assert not list((tmp_path / "r").glob("importance_*.png"))


def test_definition_hash_names_the_changed_part():
    a = parse_sweep(smoke())
    b = parse_sweep(smoke(space={"beta": {"type": "float", "low": 0.1, "high": 1.0}}))
    ha, hb = definition_hashes(a.definition()), definition_hashes(b.definition())
    assert [k for k in ha if ha[k] != hb[k]] == ["space"]
    assert isinstance(a, SweepConfig)
