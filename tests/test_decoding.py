"""The public doors onto a trained run (vaelab.load_images, encode, reconstruct, sample,
interpolate): shapes and ranges, and agreement with each other and with the model itself."""

from __future__ import annotations

import pytest
import torch

import vaelab
from vaelab.train.checkpoint import load_model
from vaelab.train.loop import RunResult


@pytest.fixture(scope="module")
def images(mnist_arrays):
    return vaelab.load_images("mnist", "test", limit=8)


def test_load_images_gives_floats_in_unit_range_and_their_labels(images):
    x, y = images
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (8,)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.5
    assert y.tolist() == [7, 2, 1, 0, 4, 1, 4, 9]  # the first MNIST test labels


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_reconstruct_decodes_the_code_and_interpolation_ends_at_both_images(
    tiny_runs, images, name
):
    x, _ = images
    run = tiny_runs[name]
    model, _ = load_model(run)
    codes = vaelab.encode(run, x)
    assert codes.shape == (8, model.latent_dim)
    recon = vaelab.reconstruct(RunResult(run, {}), x)  # a RunResult works like its directory
    with torch.no_grad():
        assert torch.allclose(recon, torch.sigmoid(model.decode(codes)), atol=1e-6)
    path = vaelab.interpolate(run, x[0], x[1], steps=5, mode="slerp")
    assert path.shape == (7, 1, 28, 28)
    assert torch.allclose(path[0], recon[0], atol=1e-5)
    assert torch.allclose(path[-1], recon[1], atol=1e-5)


def test_sample_is_fixed_by_its_seed(tiny_runs):
    run = tiny_runs["vae"]
    a, b = vaelab.sample(run, 6, seed=3), vaelab.sample(run, 6, seed=3)
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)
    assert not torch.equal(a, vaelab.sample(run, 6, seed=4))
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
