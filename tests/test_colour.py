"""Images other than 28×28 grey MNIST: colour 32×32 digits (labelled) and 64×64 colour blobs
(unlabelled) train and evaluate end to end through data registered from arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.config import EvalConfig, TrainConfig
from vaelab.data import register_arrays
from vaelab.evaluate.run import evaluate_run
from vaelab.models import VAE
from vaelab.train.loop import train

TINY = dict(
    batch_size=32, log_every=4, channels=[8, 16, 32, 32], epochs=1, latent_dim=8, limit_val=64
)
TINY_EVAL = dict(
    limit=100, iw_samples=4, n_samples=100, probe_train=200, classifier="smoke", n_pairs=1, steps=3
)


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (1, 64), (3, 64)])
def test_model_round_trips_image_shape(channels: int, size: int) -> None:
    x = torch.rand(2, channels, size, size)
    assert VAE(4, [8, 8, 8, 8], channels, size)(x).logits.shape == x.shape


def test_64_pixels_get_one_more_block_and_a_wider_last_layer() -> None:
    m = VAE(4, [8, 16, 32, 64], 3, 64)
    assert m.encoder.sizes == [64, 32, 16, 8, 3, 1]
    assert m.encoder.to_latent.in_features == 128


def tinted_digits(x: np.ndarray, seed: int) -> np.ndarray:
    """(N, 1, 28, 28) grey digits → (N, 3, 32, 32): padded by 2 and tinted by a random colour."""
    colour = np.random.default_rng(seed).uniform(0.3, 1.0, (len(x), 3, 1, 1))
    padded = np.pad(x[:, :1].astype(np.float64), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.rint(padded * colour).astype(np.uint8)


def blobs(n: int, seed: int) -> np.ndarray:
    """(n, 3, 64, 64) soft coloured discs at random places."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    out = np.empty((n, 3, 64, 64), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(16, 48), rng.uniform(16, 48), rng.uniform(6, 14)
        disc = np.clip(r - np.hypot(yy - cy, xx - cx), 0, 1)
        out[i] = np.rint(255 * disc * rng.uniform(0.2, 1.0, (3, 1, 1)))
    return out


def _train_and_evaluate(name: str, tmp_path: Path, model: str = "vae") -> dict[str, float]:
    run = tmp_path / name
    cfg = TrainConfig(dataset="arrays", data_dir=name, model=model, **TINY)  # type: ignore[arg-type]
    train(cfg, run, tensorboard=False)
    evaluate_run(run, EvalConfig(**TINY_EVAL), log=lambda m: None)  # type: ignore[arg-type]
    return json.loads((run / "eval.json").read_text())


def test_colour_32_digits_get_every_labelled_metric(mnist_arrays, tmp_path: Path) -> None:
    from vaelab.data.store import split_arrays

    x, y = split_arrays(mnist_arrays, "train")
    xt, yt = split_arrays(mnist_arrays, "test")
    register_arrays(
        "colour-digits", tinted_digits(x[:600], 0), tinted_digits(xt[:100], 1), y[:600], yt[:100]
    )
    m = _train_and_evaluate("colour-digits", tmp_path)
    assert m["classifier/test_accuracy"] > 0.25 and "probe/linear_acc" in m
    assert "interp/lerp/min_conf" in m and not any(k.startswith("skipped/") for k in m)
    assert (tmp_path / "colour-digits" / "figures" / "samples.png").is_file()


def test_unlabelled_64_blobs_get_label_free_metrics_and_say_what_was_skipped(
    tmp_path: Path,
) -> None:
    register_arrays("blobs", blobs(300, 0), blobs(100, 1))
    m = _train_and_evaluate("blobs", tmp_path)
    for k in ("test/sse", "test/elbo", "test/iw_nll", "test/active_units", "samples/fd"):
        assert np.isfinite(m[k]), k
    assert m["skipped/probes"] == m["skipped/interpolation"] == 1.0
    assert m["skipped/samples/class_entropy"] == m["skipped/recon/classifier_accuracy"] == 1.0
    assert "classifier/test_accuracy" not in m and "samples/class_frac_0" not in m
    assert (tmp_path / "blobs" / "figures" / "reconstructions.png").is_file()


def test_report_names_the_data_it_is_about() -> None:
    from vaelab.report.render import phrase

    text = "unlike real digits, about 1 for a real digit, not digit-like, handwritten digits"
    assert phrase(text, "mnist") == text  # MNIST's report text is unchanged
    assert phrase(text, "fashion-mnist") == (
        "unlike real clothes, about 1 for a real garment, not garment-like, clothes"
    )
    assert phrase("a digit is named", "arrays-0123") == "an image is named"
