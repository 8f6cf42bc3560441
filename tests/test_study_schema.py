"""study.json's typed schema (vaelab.study.schema): the file's keys, reading it back, the paths the
report cites, and the eval.json key names the study reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vaelab.errors import RunError
from vaelab.evaluate import keys
from vaelab.evaluate.context import PATH_MODES
from vaelab.report.render import Doc
from vaelab.study.presets import make_config
from vaelab.study.schema import (
    Baselines,
    ClassifierInfo,
    CodeStats,
    DataInfo,
    Environment,
    InterpolationSummary,
    RunEntry,
    RungRecord,
    SearchResult,
    SplitInfo,
    StudyResult,
    json_path,
    load_study,
    resolve,
)

from .study_keys import CONFIG_KEYS, OPTIONAL, STUDY_JSON_KEYS, key_tree


def _run(name: str, model: str, beta: float, metrics: dict[str, float]) -> RunEntry:
    return RunEntry(
        name=name,
        stage="search" if name.startswith("beta") else name,
        model=model,
        beta=beta,
        epochs=1,
        train_images=64,
        dir=f"runs/{name}",
        run_dir=f"/studies/s/runs/{name}",
        host="node-1",
        evaluation="full",
        train={"steps": 1, "train_time_s": 0.5, "val/loss": 180.0},
        eval=dict(metrics),
        reused=False,
        config={"model": model, "beta": beta},
    )


def _study() -> StudyResult:
    """A small, complete study result (values made up, structure as the runner builds it)."""
    metrics = {k: 0.25 for k in keys.eval_keys(is_vae=True, latent_dim=2)}
    runs = {
        "ae": _run("ae", "ae", 0.0, metrics),
        "beta_1_r0": _run("beta_1_r0", "vae", 1.0, metrics),
        "beta_3_r0": _run("beta_3_r0", "vae", 3.0, metrics),
    }
    split = SplitInfo(count=10, label_counts=[1] * 10, pixel_mean=0.1, shape=[1, 2, 2], sha256="x")
    return StudyResult(
        config=make_config("smoke", out="s"),
        env=Environment(
            vaelab="0",
            python="3",
            torch="2",
            numpy="2",
            platform="p",
            processor="x86_64",
            cpu_count=2,
            torch_threads=2,
            device="cpu",
            git_commit=None,
            argv=["vaelab", "study"],
        ),
        data=DataInfo(
            dataset="mnist", splits={"train": split, "test": split}, source=None, cache="c"
        ),
        baselines=Baselines(mean_image_sse=50.0, prior_norm=8.0),
        runs=runs,
        search=SearchResult(
            method="halving",
            trials=[1.0, 3.0],
            trial_runs={"1": "beta_1_r0", "3": "beta_3_r0"},
            log=["decades 1, 3"],
            rungs=[
                RungRecord(
                    rung=0,
                    epochs=1,
                    limit_train=512,
                    selection_loss={"1": 2.0, "3": 1.0},
                    runs={"1": "beta_1_r0", "3": "beta_3_r0"},
                    promoted=[3.0],
                )
            ],
            chosen_beta=3.0,
            eligible=[3.0],
            reason="the lowest sample FD",
            fallback=False,
            best_decade=1.0,
            rule="",
            storage="sqlite:////studies/s/search.db",
            study_name="smoke-0123abcd",
        ),
        tuned="beta_3_r0",
        code_stats={n: CodeStats(1.5, 2.5, 0.1, 0.3, 0.05) for n in ("ae", "beta_3_r0")},
        interpolation={"AE lerp": InterpolationSummary.from_eval(metrics, "lerp")},
        representation={"ae": {keys.PROBE_LINEAR: 0.9, keys.PROBE_KNN: 0.8}},
        classifier=ClassifierInfo(variant="smoke", test_accuracy=0.97, epochs=2, train_images=10),
        stage_time_s={"data": 0.1},
        stage_order=["data"],
        run_order=list(runs),
        compute_time_s=1.5,
        train_images=192,
        wall_time_s=2.0,
    )


def test_to_dict_has_the_pinned_keys_and_round_trips():
    s = _study()
    data = json.loads(json.dumps(s.to_dict()))  # through JSON, as study.json is
    assert key_tree(data) == STUDY_JSON_KEYS
    assert StudyResult.from_dict(data) == s
    assert data["config"] == s.config.to_dict()
    assert set(data["config"]) == CONFIG_KEYS
    assert data["config"]["image_size"] is None is data["config"]["color"]  # MNIST: unset
    # the GPU name is written on CUDA devices only, and read back either way
    s.env.gpu = "H100"
    with_gpu = json.loads(json.dumps(s.to_dict()))
    assert key_tree(with_gpu) - OPTIONAL == STUDY_JSON_KEYS and "gpu" in with_gpu["env"]
    assert StudyResult.from_dict(with_gpu) == s


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda d: d["runs"]["ae"].pop("eval"), "runs::ae::eval", "is missing"),
        (lambda d: d["search"].pop("chosen_beta"), "search::chosen_beta", "is missing"),
        (lambda d: d["config"].update(seed="0"), "config::seed", "should be an integer"),
        (
            lambda d: d["code_stats"]["ae"].update(norm_mean=None),
            "code_stats::ae::norm_mean",
            "a number",
        ),
        (
            lambda d: d["runs"]["ae"]["eval"].update({"test/sse": "x"}),
            "runs::ae::eval::test/sse",
            "a number",
        ),
        (
            lambda d: d["search"]["rungs"][0].update(promoted=3.0),
            "search::rungs::0::promoted",
            "a list",
        ),
        (lambda d: d.update(runs=[]), "runs", "should be an object"),
        (lambda d: d["baselines"].update(extra=1.0), "baselines::extra", "unknown field(s)"),
        # values in range and names that name runs, not only types
        (lambda d: d["runs"]["ae"].update(model="gan"), "runs::ae::model", "should be"),
        (lambda d: d["search"].update(method="random"), "search::method", "should be"),
        (lambda d: d.update(tuned="nope"), "tuned", "names run 'nope', not in runs"),
        (lambda d: d["runs"]["ae"].update(name="other"), "ae", "is named 'other'"),
    ],
)
def test_a_broken_study_json_names_the_field_and_the_fix(edit, field, problem):
    data = json.loads(json.dumps(_study().to_dict()))
    edit(data)
    with pytest.raises(RunError) as err:
        StudyResult.from_dict(data)
    message = str(err.value)
    assert f"'{field}'" in message and problem in message, message
    assert "re-run `vaelab study`" in message and "\n" not in message


def test_load_study_reads_the_file_and_reports_unreadable_ones(tmp_path: Path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps(_study().to_dict()))
    assert load_study(path) == _study()
    path.write_text("{not json")
    with pytest.raises(RunError, match=r"cannot read .*study\.json.*re-run `vaelab study`"):
        load_study(path)
    path.write_text("[]")
    with pytest.raises(RunError, match="the top level should be an object"):
        load_study(path)


def test_json_path_follows_fields_and_items():
    s = _study()
    data = s.to_dict()
    for get, path in [
        (lambda s: s.code_stats["ae"].norm_mean, "code_stats::ae::norm_mean"),
        (lambda s: s.runs["ae"].eval[keys.TEST_SSE], "runs::ae::eval::test/sse"),
        (lambda s: s.search.rungs[0].selection_loss["3"], "search::rungs::0::selection_loss::3"),
        (lambda s: s.wall_time_s, "wall_time_s"),
    ]:
        assert json_path(s, get) == path
        assert resolve(data, path) == get(s)  # the path names the value that was read
    with pytest.raises(AttributeError, match="no field 'trial_run'"):
        json_path(s, lambda s: s.search.trial_run(3.0))  # a method is not in the file
    with pytest.raises(AttributeError, match="code_stats::ae has no field 'norm'"):
        json_path(s, lambda s: s.code_stats["ae"].norm)  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        json_path(s, lambda s: s.runs["nope"])


def test_doc_cites_by_path_and_renders_the_value():
    s = _study()
    doc = Doc(s)
    doc.p(f"prior norm {doc.cite(lambda s: s.baselines.prior_norm, '.1f')}")
    doc.p(f"FD {doc.ev('ae', keys.SAMPLES_FD, '.2f')}")
    assert doc.markdown() == "prior norm 8.0\n\nFD 0.25\n"
    page = doc.html("t")
    assert 'data-key="baselines::prior_norm" data-fmt=".1f">8.0<' in page
    assert 'data-key="runs::ae::eval::samples/fd" data-fmt=".2f">0.25<' in page
    with pytest.raises(KeyError):
        doc.ev("ae", "samples/no_such_key")


def test_the_eval_keys_the_study_reads_are_written_by_the_evaluation():
    """A key renamed in the evaluation fails here, not in a sentence of the report."""
    written = keys.eval_keys(is_vae=True, latent_dim=4)
    named = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    assert len(named) >= 20 and named <= written, named - written
    for mode in ("lerp", "slerp"):
        assert mode in PATH_MODES
        for f in dataclasses.fields(InterpolationSummary):
            assert keys.interp_key(mode, f.name) in written, f.name
    assert keys.interp_key("lerp", "path_length_ratio") in written
    assert keys.interp_key("pixel", "realism_median") in written
    assert keys.key_of(keys.Reconstruction, "sse", "val") == "val/sse"


@pytest.mark.parametrize(
    ("field", "value"),
    [("seed", -1), ("decades", []), ("batch_size", 0), ("grace_period", 10), ("lr", 20.0)],
)
def test_a_study_json_config_out_of_range_is_refused(field, value):
    """Types alone are not enough: ranges and the checks that relate fields (StudyConfig.validate,
    TrainConfig.validate) apply to the config read back."""
    data = json.loads(json.dumps(_study().to_dict()))
    data["config"][field] = value
    with pytest.raises(RunError) as err:
        StudyResult.from_dict(data)
    message = str(err.value)
    assert "invalid " in message and f"{field}'" in message, message
    assert "re-run `vaelab study`" in message and "\n" not in message, message


def test_the_report_imports_neither_torch_nor_a_checkpoint_loader():
    """The report is drawn from stored files: importing any of its modules loads no torch."""
    import subprocess
    import sys

    import vaelab.report

    names = sorted(p.stem for p in Path(vaelab.report.__file__).parent.glob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module('vaelab.report.' + name)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or 'checkpoint' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(names) >= 10 and out.stdout.strip() == "[]", out.stdout


def test_trial_table_marks_first_rung_eligibility_not_the_deciding_rungs():
    """The β table shows first-rung numbers, so its '(eligible)' marks follow them: a β whose own
    first-rung evaluation meets both thresholds is marked even when the deciding rung (what
    `search.eligible` records) held other β."""
    from vaelab.report.sections import _trial_rows

    s = _study()
    passing = {
        **s.runs["beta_1_r0"].eval,
        keys.RECON_ACCURACY: 1.0,
        keys.SAMPLES_CLASS_ENTROPY: 2.3,
    }
    runs = {**s.runs, "beta_1_r0": dataclasses.replace(s.runs["beta_1_r0"], eval=passing)}
    s = dataclasses.replace(s, runs=runs)
    assert s.search.eligible == [3.0]  # the deciding rung's record
    marks = [row[0] for row in _trial_rows(Doc(s), s)]
    assert marks == ["1 (eligible)", "3 (chosen)"]
    failing = {**passing, keys.RECON_ACCURACY: 0.0}
    runs["beta_1_r0"] = dataclasses.replace(runs["beta_1_r0"], eval=failing)
    s = dataclasses.replace(s, runs=runs)
    assert [row[0] for row in _trial_rows(Doc(s), s)] == ["1", "3 (chosen)"]
