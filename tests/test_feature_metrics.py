"""Precision/recall (Kynkäänniemi et al. 2019) and interpolation realism on constructed cases
with known answers, a brute-force reference, and real MNIST features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.config import TrainConfig
from vaelab.data.store import split_arrays
from vaelab.evaluate import EvalConfig, load_eval_data
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.context import EvalContext
from vaelab.evaluate.features import (
    kth_neighbour_distance,
    nearest_distance,
    precision_recall,
    real_nn_scale,
    realism_ratio,
)
from vaelab.evaluate.keys import to_keys
from vaelab.evaluate.metrics import reconstruction_metrics, sample_quality_metrics


def brute_force_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The paper's definition on full distance matrices (scipy-free, float64)."""

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    r_rad = np.sort(dist(real, real), 1)[:, k]  # column 0 is the point itself
    f_rad = np.sort(dist(fake, fake), 1)[:, k]
    d_fr = dist(fake, real)
    precision = (d_fr <= r_rad[None, :]).any(1).mean()
    recall = (f_rad[None, :] >= d_fr.T).any(1).mean()
    return float(precision), float(recall)


def clusters(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points spread evenly over Gaussian blobs (std 1) at the given centres (C, d)."""
    which = np.arange(n) % len(centres)
    return centres[which] + rng.standard_normal((n, centres.shape[1]))


def test_precision_recall_matches_brute_force_across_chunks():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 8))
    fake = 0.7 * rng.standard_normal((250, 8)) + 0.5  # a narrower, shifted cloud: both < 1
    want = brute_force_pr(real, fake, 3)
    assert 0.2 < want[0] < 1.0 and 0.05 < want[1] < 0.95  # a case where both are informative
    for chunk in (7, 64, 4096):  # chunk boundaries must not change anything
        assert precision_recall(real, fake, 3, chunk=chunk) == pytest.approx(want, abs=1e-12)
    assert precision_recall(real, fake, 5, chunk=33) == pytest.approx(brute_force_pr(real, fake, 5))


def test_precision_recall_constructed_cases():
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((400, 16))
    assert precision_recall(pts, pts.copy()) == (1.0, 1.0)  # identical sets
    far = pts + 1000.0
    assert precision_recall(pts, far) == (0.0, 0.0)  # disjoint, far apart
    # Ten well-separated modes on a circle (2-d, where 200 points per mode cover a mode's
    # k-NN manifold well; in higher dimensions the estimate needs many more points).
    angle = np.arange(10) * 2 * np.pi / 10
    centres = 40.0 * np.stack([np.cos(angle), np.sin(angle)], 1)
    real = clusters(centres, 2000, rng)
    p, r = precision_recall(real, clusters(centres, 2000, rng))  # the same distribution
    assert p > 0.95 and r > 0.93
    # Sharp but few modes: a generator covering five of the ten modes. Every sample is
    # realistic (precision ≈ 1) but only half of the real images are produced (recall ≈ 0.5).
    p, r = precision_recall(real, clusters(centres[:5], 2000, rng))
    assert p > 0.95 and r == pytest.approx(0.5, abs=0.03)
    # Blurry but diverse: every mode, smeared off the manifold. Low precision, high recall.
    blurry = clusters(centres, 2000, rng) + 6.0 * rng.standard_normal((2000, 2))
    p, r = precision_recall(real, blurry)
    assert p < 0.3 and r > 0.95
    with pytest.raises(ValueError, match="same d"):
        precision_recall(real, pts)


def test_neighbour_helpers_exclude_and_leave_one_out():
    grid = np.array([[i, j] for i in range(5) for j in range(5)], dtype=float)  # unit lattice
    assert kth_neighbour_distance(grid, 1) == pytest.approx(np.ones(25))
    assert real_nn_scale(grid) == pytest.approx(1.0)
    q = np.array([[2.0, 2.0], [2.5, 2.0]])
    assert nearest_distance(q, grid) == pytest.approx([0.0, 0.5], abs=1e-6)
    # Excluding the query's own lattice point: its nearest other point is one step away.
    own = np.array([[12, -1], [-1, -1]])
    assert nearest_distance(q, grid, exclude=own) == pytest.approx([1.0, 0.5], abs=1e-6)
    assert realism_ratio(q, grid, exclude=own) == pytest.approx([1.0, 0.5], abs=1e-6)


@pytest.fixture(scope="module")
def mnist_features(mnist_arrays):
    """Smoke-classifier features of 3,000 real test images, their labels, and the images."""
    net, _ = clf.reference_classifier("mnist", variant="smoke")
    x8, y = split_arrays(mnist_arrays, "test")
    x = torch.from_numpy(x8[:3000]).float() / 255.0
    return clf.classify(net, x)[0], y[:3000], x, net


def test_realism_real_images_score_one_and_pixel_blends_worse(mnist_features):
    feats, y, x, net = mnist_features
    ref, held = feats[:2500], feats[2500:]
    scale = real_nn_scale(ref)
    real_score = np.median(realism_ratio(held, ref, scale))
    assert 0.9 < real_score < 1.1  # held-out real images: ≈ 1 by construction of the unit
    # Decodes of "real codes": a path whose interior decodes are real images (a perfect decoder
    # along a path through real data) scores ≈ 1 even when its own images are in the reference
    # set, because each path's own images are excluded as its end images are in evaluation.
    idx = np.arange(2500, 2600)
    own = realism_ratio(feats[idx], feats, exclude=idx[:, None])
    assert 0.85 < np.median(own) < 1.15
    # Pixel cross-fades half-way between two real test images of different labels: overlays.
    a, b = np.arange(2500, 2750), np.arange(2750, 3000)
    a, b = a[y[a] != y[b]], b[y[a] != y[b]]
    blend = 0.5 * x[a] + 0.5 * x[b]
    blend_feats = clf.classify(net, blend)[0]
    blend_score = realism_ratio(blend_feats, ref, scale)
    # Measured with the smoke classifier: median 1.28 vs 1.02 for real images, 90th
    # percentile 1.59 vs 1.49 (the standard classifier separates them further).
    assert np.median(blend_score) > 1.15 * real_score
    assert np.quantile(blend_score, 0.9) > np.quantile(realism_ratio(held, ref, scale), 0.9)


class IdentityCodec(torch.nn.Module):
    """A 'model' whose code is the image and whose decoder returns it: decodes of real codes are
    the real images themselves (up to the 1e-6 clamp of the logit)."""

    is_vae = False
    latent_dim = 784

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(z.clamp(1e-6, 1 - 1e-6)).view(-1, 1, 28, 28)


def test_decodes_of_real_codes_score_like_real_images(mnist_arrays, tmp_path):
    """Through the evaluation's own reconstruction group: a perfect decoder's reconstructions
    have realism 1 (each matched against every real image but its original), precision and
    recall 1 and Fréchet distance 0."""
    ecfg = EvalConfig(limit=1000, n_samples=1000, classifier="smoke", device="cpu")
    data = load_eval_data("mnist", "test", limit=1000)
    ctx = EvalContext(
        tmp_path, IdentityCodec(), TrainConfig(), ecfg, data, torch.device("cpu"), lambda m: None
    )
    m = to_keys(reconstruction_metrics(ctx), "test")  # as eval.json holds them
    assert m["recon/realism_median"] == pytest.approx(1.0, abs=1e-3)
    assert m["recon/precision"] == m["recon/recall"] == 1.0
    assert abs(m["recon/fd"]) < 1e-3 and m["test/sse"] < 1e-6


class BankCodec(torch.nn.Module):
    """A 'generator' whose every decode is a fixed bank of real images, whatever the code."""

    is_vae = True
    latent_dim = 2

    def __init__(self, bank: torch.Tensor) -> None:
        super().__init__()
        self.bank = bank

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.bank[: len(z)].clamp(1e-6, 1 - 1e-6))


def test_samples_that_are_real_images_score_like_the_floor(mnist_arrays, tmp_path):
    """Through the evaluation's own samples group: samples that are the floor's own real train
    images have the floor's Fréchet distance and precision/recall, and class fractions that
    follow their labels; samples that are all 3s have one class and near-zero entropy."""
    ecfg = EvalConfig(limit=1000, n_samples=1000, classifier="smoke", device="cpu")
    data = load_eval_data("mnist", "test", limit=1000)
    x_tr, y_tr = split_arrays(mnist_arrays, "train")

    def metrics(images: np.ndarray) -> dict[str, float]:
        model = BankCodec(torch.from_numpy(images).float() / 255.0)
        cpu = torch.device("cpu")
        group = sample_quality_metrics(
            EvalContext(tmp_path, model, TrainConfig(), ecfg, data, cpu, lambda m: None)
        )
        return to_keys(group, "test")

    m = metrics(x_tr[:1000])  # the first 1000 train images: the floor's images
    assert m["samples/fd"] == pytest.approx(m["floor/fd_train_vs_test"], abs=1e-3)
    assert m["samples/precision"] == m["floor/precision"]
    assert m["samples/recall"] == m["floor/recall"]
    fracs = np.array([m[f"samples/class_frac_{c}"] for c in range(10)])
    truth = np.bincount(y_tr[:1000], minlength=10) / 1000
    np.testing.assert_allclose(fracs, truth, atol=0.02)  # the smoke classifier's errors
    assert m["samples/class_entropy"] == pytest.approx(-(truth * np.log(truth)).sum(), abs=0.05)

    threes = metrics(x_tr[y_tr == 3][:1000])
    assert threes["samples/class_frac_3"] > 0.9 and threes["samples/class_entropy"] < 0.4
    assert threes["samples/recall"] < 0.5 * m["samples/recall"]  # one class covers little
    assert threes["samples/fd"] > 10 * m["samples/fd"]
