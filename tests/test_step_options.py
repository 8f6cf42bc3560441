"""The training step's speed options (--channels-last, --fused-adam, --compile): each trains the
same model as the default step, up to float rounding, and each resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vaelab.cli import main
from vaelab.config import TrainConfig
from vaelab.train.checkpoint import load_checkpoint
from vaelab.train.loop import train
from vaelab.train.runlog import read_metrics

TINY = dict(
    model="vae", limit_train=192, limit_val=64, batch_size=32, log_every=3, channels=[8, 8, 8, 8]
)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _resumes_exactly(tmp_path: Path, **options: bool) -> Path:
    """Two epochs straight vs one epoch then --resume to two: the same weights, bit for bit."""
    for epochs, run, resume in ((2, "full", False), (1, "split", False), (2, "split", True)):
        cfg = TrainConfig(epochs=epochs, **TINY, **options)  # type: ignore[arg-type]
        train(cfg, tmp_path / run, resume=resume)
    full, split = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)
    return tmp_path / "full"


def _close_to_eager(run: Path, tmp_path: Path) -> None:
    """The same losses as the default step: the first logged window up to rounding, the final
    validation loss within 1 % (the weights drift apart: Adam scales the rounding noise of the
    near-zero gradients of biases ahead of BatchNorm up to full-size steps)."""
    eager = train(TrainConfig(epochs=2, **TINY), tmp_path / "eager").run_dir  # type: ignore[arg-type]
    (a, *_, a_val), (b, *_, b_val) = (read_metrics(r / "metrics.jsonl") for r in (run, eager))
    assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)
    assert a_val["val/loss"] == pytest.approx(b_val["val/loss"], rel=0.01)


def test_channels_last_trains_the_same_model_and_resumes_exactly(tmp_path, mnist_arrays):
    _close_to_eager(_resumes_exactly(tmp_path, channels_last=True), tmp_path)
    assert main(["train", "--out", str(tmp_path / "cli"), "--channels-last", *_flags()]) == 0


def test_fused_adam_trains_the_same_model_and_resumes_exactly(tmp_path, mnist_arrays):
    run = _resumes_exactly(tmp_path, fused_adam=True)
    _close_to_eager(run, tmp_path)
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["optimizer"]["param_groups"][0]
    assert saved["fused"] is True  # the kernel the run used, restored on --resume
    assert main(["train", "--out", str(tmp_path / "cli"), "--fused-adam", *_flags()]) == 0


@pytest.mark.slow
def test_compile_uses_the_shared_cache_and_resumes_exactly(
    tmp_path, mnist_arrays, monkeypatch, session_home
):
    # set, then removed: the test's end restores the variable as it was, whatever train() set
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "-")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    run = _resumes_exactly(tmp_path, compile=True)
    assert (session_home / "inductor").is_dir()
    _close_to_eager(run, tmp_path)


def _flags() -> list[str]:
    return ["--model=vae", "--limit-train=64", "--limit-val=32", "--epochs=1", "--channels=8,8,8,8"]
