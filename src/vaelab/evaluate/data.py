"""The images an evaluation scores: one split on the device, in the two forms the metrics need."""

from __future__ import annotations

from typing import NamedTuple

import torch

from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.runtime import stream_seed


class EvalData(NamedTuple):
    """x: images in [0, 1] (N, C, H, W) for reconstruction metrics, the classifier and figures;
    x_lik: the same images as the likelihood sees them; y: labels (N,). All on one device."""

    x: torch.Tensor
    x_lik: torch.Tensor
    y: torch.Tensor


def load_eval_data(
    dataset: str,
    split: str = "test",
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    color: str | None = None,
    limit: int | None = None,
    likelihood: str = "gaussian",
    binarize: str = "none",
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EvalData:
    """The first `limit` images of `split` (all by default) as a run with this likelihood and
    binarisation is evaluated.

    Likelihood data: Bernoulli runs score a seeded binarisation of the split (and, when they
    trained on binarised pixels, reconstruct it too); Gaussian runs a uniformly dequantised copy
    ((byte + u)/256), so the density is of continuous data. Unpacks as `x, x_lik, y = ...`.
    """
    x8, y = split_arrays(load_arrays(dataset, data_dir, image_size, color), split)
    x8, y = x8[:limit], y[:limit]
    device = torch.device(device)
    x = torch.from_numpy(x8).to(device).float() / 255.0
    g = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "eval_binarize"))
    if likelihood == "bernoulli":
        x_lik = torch.bernoulli(x.cpu(), generator=g).to(device)
        if binarize != "none":
            x = x_lik
    else:
        noise = torch.rand(x8.shape, generator=g)
        x_lik = ((torch.from_numpy(x8).float() + noise) / 256.0).to(device)
    return EvalData(x, x_lik, torch.from_numpy(y).to(device))
