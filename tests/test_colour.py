"""Images other than 28×28 grey MNIST, given as picture folders (`--dataset folder`): colour
32×32 digits in class sub-folders and 64×64 colour blobs in a flat (unlabelled) folder train,
evaluate and run the smoke study end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab.config import EvalConfig, TrainConfig
from vaelab.evaluate import evaluate_run
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


def write_folder(root: Path, split: str, x: np.ndarray, y: np.ndarray | None = None) -> None:
    """(N, 3, H, W) uint8 images as PNGs under root/split/: in class sub-folders `y` names, or
    flat when `y` is None (an unlabelled folder)."""
    for i, img in enumerate(x):
        where = root / split / (f"class{y[i]}" if y is not None else "")
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(where / f"{i:05d}.png")


@pytest.fixture(scope="module")
def digits_folder(mnist_arrays, tmp_path_factory) -> Path:
    from vaelab.data.store import split_arrays

    root = tmp_path_factory.mktemp("colour") / "digits"
    x, y = split_arrays(mnist_arrays, "train")
    xt, yt = split_arrays(mnist_arrays, "test")
    write_folder(root, "train", tinted_digits(x[:720], 0), y[:720])
    write_folder(root, "test", tinted_digits(xt[:200], 1), yt[:200])
    return root


@pytest.fixture(scope="module")
def blobs_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colour") / "blobs"
    write_folder(root, "train", blobs(360, 0))
    write_folder(root, "test", blobs(120, 1))
    return root


def _train_and_evaluate(folder: Path, tmp_path: Path, model: str = "vae") -> dict[str, float]:
    run = tmp_path / folder.name
    cfg = TrainConfig(dataset="folder", data_dir=str(folder), model=model, **TINY)  # type: ignore[arg-type]
    train(cfg, run, tensorboard=False)
    evaluate_run(run, EvalConfig(**TINY_EVAL), log=lambda m: None)  # type: ignore[arg-type]
    return json.loads((run / "eval.json").read_text())


def test_colour_32_digits_get_every_labelled_metric(digits_folder: Path, tmp_path: Path) -> None:
    from vaelab.data.store import load_split

    x, y = load_split("folder", "test", str(digits_folder), 32, "rgb")
    assert x.shape == (200, 3, 32, 32) and set(y.tolist()) == set(range(10))
    m = _train_and_evaluate(digits_folder, tmp_path)
    assert m["classifier/test_accuracy"] > 0.25 and "probe/linear_acc" in m
    assert "interp/lerp/min_conf" in m and not any(k.startswith("skipped/") for k in m)
    assert (tmp_path / "digits" / "figures" / "samples.png").is_file()


def test_unlabelled_64_blobs_get_label_free_metrics_and_say_what_was_skipped(
    blobs_folder: Path, tmp_path: Path
) -> None:
    m = _train_and_evaluate(blobs_folder, tmp_path)
    for k in ("test/sse", "test/elbo", "test/iw_nll", "test/active_units", "samples/fd"):
        assert np.isfinite(m[k]), k
    assert m["skipped/probes"] == m["skipped/interpolation"] == 1.0
    assert m["skipped/samples/class_entropy"] == m["skipped/recon/classifier_accuracy"] == 1.0
    assert "classifier/test_accuracy" not in m and "samples/class_frac_0" not in m
    assert (tmp_path / "blobs" / "figures" / "reconstructions.png").is_file()


@pytest.mark.parametrize("name", ["digits", "blobs"])
def test_smoke_study_runs_on_a_picture_folder(
    name: str, digits_folder: Path, blobs_folder: Path, tmp_path: Path
) -> None:
    """`vaelab study --preset smoke --dataset folder` to its report: labelled 32×32 colour digits
    and unlabelled 64×64 blobs (whose β is chosen by label-free FD alone, and whose study skips
    the interpolation and representation stages, saying why)."""
    from vaelab.report.answers import NO_INTERPOLATION

    folder = {"digits": digits_folder, "blobs": blobs_folder}[name]
    out = tmp_path / "study"
    argv = ["study", "--preset", "smoke", "--dataset", "folder", "--data-dir", str(folder)]
    done = subprocess.run(
        [sys.executable, "-m", "vaelab", *argv, "--out", str(out)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = json.loads((out / "study.json").read_text())
    assert study["config"]["dataset"] == "folder"
    report = (out / "report.md").read_text()
    shape = "3×32×32" if name == "digits" else "3×64×64"
    assert f"a sum over its {shape} values" in report
    unlabelled = "these images have no labels" in report
    assert unlabelled == (name == "blobs")
    assert (report.count(NO_INTERPOLATION) == 2) == unlabelled  # §6 and its answer
    assert (study["interpolation"] == {} == study["representation"]) == unlabelled
    assert ("interpolation" in study["stage_order"]) != unlabelled
    assert (study["classifier"]["test_accuracy"] is None) == unlabelled
    # named by its folder, and reproduced by a command that reads the same pictures
    title = f"# vaelab study: AE and β-VAE on the picture folder `{folder.name}/` ({shape})"
    assert report.startswith(title)  # a folder named "digits" keeps its name
    assert f"--dataset folder --data-dir {folder} --out {out}" in report
    # the units paragraph lists only what the full evaluation measured on these images
    assert ("IW-NLL with K = 8, probes, interpolations, all figures" in report) != unlabelled
    assert ("FD = Fréchet distance of the label-free network's features" in report) == unlabelled


def test_report_names_the_data_it_is_about() -> None:
    from vaelab.report.render import phrase

    text = "unlike real digits, about 1 for a real digit, not digit-like, handwritten digits"
    assert phrase(text, "mnist") == text  # MNIST's report text is unchanged
    assert phrase(text, "fashion-mnist") == (
        "unlike real clothes, about 1 for a real garment, not garment-like, clothes"
    )
    assert phrase("a digit is named", "arrays-0123") == "an image is named"
