"""Training and evaluation on a CUDA GPU: the same model as on the CPU up to float rounding,
bf16 within reach of fp32, and the speed options. Skipped where there is no GPU
(benchmarks/gpu_check.sh runs them on one); that script's dry run is checked everywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vaelab.config import TrainConfig
from vaelab.evaluate import EvalConfig, evaluate_run
from vaelab.train.loop import train
from vaelab.train.runlog import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="vae", limit_train=512, limit_val=256, batch_size=64, log_every=4, epochs=2)


def _losses(run: Path) -> tuple[float, float]:
    """(first logged train/loss, final val/loss) of a run."""
    first, *_, last = read_metrics(run / "metrics.jsonl")
    return first["train/loss"], last["val/loss"]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, mnist_arrays) -> Path:
    return train(TrainConfig(device="cpu", **TINY), tmp_path_factory.mktemp("cpu")).run_dir  # type: ignore[arg-type]


@pytest.mark.cuda
@pytest.mark.parametrize(
    ("options", "rel"),
    [
        ({}, 1e-3),
        ({"channels_last": True}, 1e-3),
        ({"compile": True}, 1e-3),
        ({"precision": "bf16"}, 0.05),
    ],
)
def test_cuda_training_matches_the_cpu(tmp_path, cpu_run, options, rel):
    run = train(TrainConfig(device="cuda", **TINY, **options), tmp_path / "gpu").run_dir  # type: ignore[arg-type]
    (first, val), (cpu_first, cpu_val) = _losses(run), _losses(cpu_run)
    assert first == pytest.approx(cpu_first, rel=rel)
    # 16 steps later the runs have drifted by rounding (bf16 by its 8-bit mantissa): 2 % / 5 %
    assert val == pytest.approx(cpu_val, rel=max(rel, 0.02))


@pytest.mark.cuda
def test_cuda_evaluation_matches_the_cpu(tmp_path, cpu_run):
    small = dict(limit=500, iw_samples=16, n_samples=500, probe_train=1000, classifier="smoke")
    cpu = evaluate_run(cpu_run, EvalConfig(device="cpu", figures=False, **small))  # type: ignore[arg-type]
    gpu = evaluate_run(cpu_run, EvalConfig(device="cuda", figures=False, **small))  # type: ignore[arg-type]
    for key in ("test/sse", "test/kl"):  # deterministic: rounding only
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-3), key
    for key in ("test/elbo", "test/iw_nll"):  # the GPU draws other q(z|x) samples
        assert gpu[key] == pytest.approx(cpu[key], rel=0.02), key


def test_gpu_check_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    script = ROOT / "benchmarks" / "gpu_check.sh"
    env = {"PATH": "/usr/bin:/bin", "GPU_CHECK_OUT": str(tmp_path / "out")}
    r = subprocess.run(["bash", script, "--dry-run"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    for step in ("install", "tests", "train-vae-bf16", "train-vae-fp32-compile", "torchrun"):
        assert f"== {step}: " in r.stdout, step
    assert "-m cuda" in r.stdout and "study --preset default --device cuda" in r.stdout
    assert not (tmp_path / "out").exists()
    bad = subprocess.run(["bash", script, "--fast"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "unknown argument '--fast'" in bad.stderr
    ci = "".join(p.read_text() for p in (ROOT / "Makefile", *(ROOT / ".ci").iterdir()))
    assert "gpu_check" not in ci  # a GPU machine runs it by hand, CI never
