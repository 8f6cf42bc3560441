"""The training engine: quality gate, resume equivalence, signals, refusals, bad configs."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaelab.cli import main
from vaelab.config import TrainConfig
from vaelab.errors import ConfigError, RunError
from vaelab.fsutil import file_lock
from vaelab.losses import objective
from vaelab.train import loop as training
from vaelab.train.checkpoint import load_checkpoint
from vaelab.train.loop import train
from vaelab.train.runlog import MetricsLog

from .needs import need_module

TINY = dict(limit_train=256, limit_val=128, batch_size=32, log_every=4, channels=[8, 16, 16, 32])


def _weights(run_dir: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / f"{which}.pt")["model"]


def test_quality_gate_reconstruction_falls_markedly(tmp_path, mnist_arrays):
    cfg = TrainConfig(
        model="ae", epochs=5, limit_train=512, limit_val=256, batch_size=32, log_every=4, seed=0
    )
    result = train(cfg, tmp_path / "ae")
    records = [json.loads(line) for line in (tmp_path / "ae" / "metrics.jsonl").open()]
    first_logged = records[0]["train/recon"]
    final = result.summary.val["val/recon"]
    # An untrained decoder (≈0.5 grey) scores ~150-200 SSE; predicting the mean digit ~52.
    assert final < 0.35 * first_logged, (first_logged, final)
    assert final < 45.0, final
    for name in (
        "config.json",
        "env.json",
        "metrics.jsonl",
        "metrics.csv",
        "train.log",
        "DONE",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (tmp_path / "ae" / name).is_file(), name
    keys = set().union(*records)
    assert {
        "train/loss",
        "train/recon",
        "train/kl",
        "val/loss",
        "val/recon",
        "val/kl",
        "epoch",
        "step",
        "images_per_s",
    } <= keys


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, mnist_arrays):
    import vaelab

    cfg = dict(model="vae", beta=1.0, seed=3, **TINY)
    vaelab.train(TrainConfig(epochs=2, **cfg), tmp_path / "full")  # the public API
    train(TrainConfig(epochs=1, **cfg), tmp_path / "split")
    train(TrainConfig(epochs=2, **cfg), tmp_path / "split", resume=True)  # extend a DONE run
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # the resumed log holds the uninterrupted run's records, every value equal: no repeat, no gap
    full, split = _logged(tmp_path / "full"), _logged(tmp_path / "split")
    assert [r["step"] for r in full if "train/loss" in r] == [4, 8, 12, 16]
    assert [r["epoch"] for r in full if "val/loss" in r] == [1, 2]
    assert split == full
    for run in ("full", "split"):
        path = tmp_path / run / "metrics.csv"
        assert path.read_bytes() == _csv_of(tmp_path / run / "metrics.jsonl"), run


def _logged(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock values."""
    clock = ("images_per_s", "epoch_time_s")
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").open()]
    return [{k: v for k, v in r.items() if k not in clock} for r in records]


def _csv_of(jsonl: Path) -> bytes:
    """What metrics.csv must hold: every record of the JSONL, columns in order of first use."""
    records = [json.loads(x) for x in jsonl.open()]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in records for k in r)))
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue().encode()


def test_metrics_csv_mirrors_the_jsonl_through_new_columns_and_resumes(tmp_path):
    """Appended epoch by epoch, the CSV equals the one written whole from the JSONL: when a
    record brings a new column, after a resume truncates the log, and with non-finite values."""
    log = MetricsLog(tmp_path, tensorboard=False)
    log.log({"step": 2, "epoch": 1, "val/loss": 2.5})
    log.sync()
    for step in (3, 4):
        log.log({"step": step, "epoch": 1 + step / 4, "train/loss": 1.0 / step})
    log.log({"step": 4, "epoch": 2, "val/loss": 0.125})
    log.sync()
    log.log({"step": 6, "epoch": 3, "val/loss": float("nan")})
    log.close()
    assert (tmp_path / "metrics.csv").read_bytes() == _csv_of(tmp_path / "metrics.jsonl")
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 6
    MetricsLog.truncate_after(tmp_path, 3)
    log = MetricsLog(tmp_path, tensorboard=False)
    log.log({"step": 4, "epoch": 2, "val/loss": 0.25})
    log.sync()
    log.log({"step": 5, "epoch": 2.5, "train/loss": 0.5, "train/kl": 0.0})
    log.close()
    assert (tmp_path / "metrics.csv").read_bytes() == _csv_of(tmp_path / "metrics.jsonl")
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 5


def test_tensorboard_events_hold_the_logged_scalars(tmp_path, mnist_arrays):
    """The TensorBoard writer (on when `tensorboard` is installed) records every namespaced
    metric at its step, with the values of metrics.jsonl."""
    need_module("tensorboard", "tensorboard is in the dev extra: pip install -e '.[dev]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(TrainConfig(model="vae", epochs=2, **TINY), tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").open()]
    tags = {k for r in records for k in r if "/" in k}
    assert tags == {f"{s}/{m}" for s in ("train", "val") for m in ("loss", "recon", "kl")} | {
        "train/beta",
        "train/lr",
    }
    assert set(events.Tags()["scalars"]) == tags
    for tag in tags:
        logged = [(r["step"], r[tag]) for r in records if tag in r]
        stored = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [s for s, _ in stored] == [s for s, _ in logged], tag
        for (_, a), (_, b) in zip(logged, stored, strict=True):
            assert b == pytest.approx(a, rel=1e-6), tag  # stored as float32


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vaelab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_sigint_mid_epoch_saves_and_resume_matches(tmp_path, mnist_arrays):
    common = [
        "--model",
        "vae",
        "--limit-train",
        "3200",
        "--limit-val",
        "128",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--log-every",
        "2",
        "--seed",
        "5",
        "--threads",
        "1",
    ]
    ref = _cli("train", *common, "--out", str(tmp_path / "ref"))
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    run = tmp_path / "run"
    proc = _cli("train", *common, "--out", str(run))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is inside the first epoch
        if (run / "metrics.jsonl").is_file() and len((run / "metrics.jsonl").read_text()) > 400:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err and f"--out {run} --resume" in err
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 0 and 0 < ckpt["batch"] < 100  # saved mid-epoch
    assert not (run / "DONE").exists()

    again = _cli("train", "--out", str(run), "--resume", "--threads", "1")
    assert again.wait(timeout=300) == 0, again.stderr.read()
    a, b = _weights(tmp_path / "ref"), _weights(run)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_truncated_checkpoint_is_a_clear_error(tmp_path, mnist_arrays, capsys):
    run = tmp_path / "r"
    train(TrainConfig(epochs=1, **TINY), run)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    (run / "DONE").unlink()
    assert main(["train", "--out", str(run), "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged or truncated" in err[0] and str(last) in err[0]


def test_lock_and_overwrite_refusals(tmp_path, mnist_arrays):
    run = tmp_path / "r"
    with file_lock(run / ".lock"), pytest.raises(RunError, match="in use by another"):
        train(TrainConfig(epochs=1, **TINY), run)
    train(TrainConfig(epochs=1, **TINY), run)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(RunError, match=r"already holds a finished run \(DONE\); pass --resume"):
        train(TrainConfig(epochs=1, **TINY), run)
    with pytest.raises(ConfigError, match="different config"):
        train(TrainConfig(epochs=1, **{**TINY, "lr": 0.5}), run, resume=True)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    # resuming a finished run with the same epochs is a no-op that returns its summary, DONE's
    # content read back as a TrainSummary (the last validation under `val`)
    summary = train(TrainConfig(epochs=1, **TINY), run, resume=True).summary
    done = json.loads((run / "DONE").read_text())
    assert summary.epochs == 1 and summary.to_dict() == done
    assert set(summary.val) == {"val/loss", "val/recon", "val/kl"} <= set(done)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--beta", "-1"], "beta"),
        (["--latent-dim", "0"], "latent_dim"),
        (["--dataset", "cifar"], "dataset"),
        (["--epochs", "0"], "epochs"),
        (["--model", "gan"], "model"),
        (["--lr", "0"], "lr"),
    ],
)
def test_invalid_configs_fail_before_work(tmp_path, capsys, flags, field):
    out = tmp_path / "never"
    assert main(["train", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"'{field}'" in err[0]
    assert not out.exists()


def test_toml_config_and_unknown_field(tmp_path, capsys):
    good = tmp_path / "c.toml"
    good.write_text('[train]\nmodel = "vae"\nbeta = 0.5\nlatent_dim = 8\n')
    bad = tmp_path / "b.toml"
    bad.write_text("betta = 2\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "unknown config field(s) 'betta'" in capsys.readouterr().err
    from vaelab.cli import build_parser
    from vaelab.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--config", str(good), "--beta", "2", "--out", "x"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.beta, cfg.latent_dim) == ("vae", 2.0, 8)  # flag overrides file


def test_non_finite_loss_stops_with_step_and_term(tmp_path, mnist_arrays, monkeypatch):
    run = tmp_path / "r"
    train(TrainConfig(model="vae", epochs=1, **TINY), run)
    good = (run / "checkpoints" / "last.pt").read_bytes()
    calls = {"n": 0}

    def poisoned(out, x, beta, likelihood, sigma2=0.5):
        calls["n"] += 1
        parts = objective(out, x, beta, likelihood, sigma2)
        if calls["n"] == 3:
            parts.kl = parts.kl * float("nan")
            parts.total = parts.recon + parts.kl
        return parts

    monkeypatch.setattr(training, "objective", poisoned)
    with pytest.raises(RunError, match=r"non-finite train/kl at step 11 \(epoch 2\)"):
        train(TrainConfig(model="vae", epochs=2, **TINY), run, resume=True)
    assert (run / "checkpoints" / "last.pt").read_bytes() == good


def test_bernoulli_dynamic_binarisation_trains(tmp_path, mnist_arrays):
    run = tmp_path / "b"
    cfg = TrainConfig(
        model="vae",
        likelihood="bernoulli",
        binarize="dynamic",
        epochs=2,
        **{**TINY, "limit_train": 1024},
    )
    result = train(cfg, run)
    first = json.loads((run / "metrics.jsonl").open().readline())["train/recon"]
    # BCE of a coin per pixel is 784·ln 2 ≈ 543 nats; a working model is far below.
    assert 0 < result.summary.val["val/recon"] < min(0.6 * first, 400), (first, result.summary)
