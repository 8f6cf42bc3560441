"""Batched no-grad passes through a model: codes, reconstructions and prior samples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vaelab.distributions import DiagonalGaussian
from vaelab.models import AutoEncoder, is_vae


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, bs: int = 1000) -> list[Any]:
    """fn applied to consecutive batches of x's rows (bounded memory), results in order."""
    return [fn(x[i : i + bs]) for i in range(0, len(x), bs)]


def decode_images(model: AutoEncoder, z: torch.Tensor) -> torch.Tensor:
    """Decoded image means in [0, 1] (sigmoid of logits) for codes (N, nz), batched."""
    return torch.cat(batched(lambda b: torch.sigmoid(model.decode(b)), z, 2000))


def codes(model: AutoEncoder, x: torch.Tensor) -> tuple[torch.Tensor, DiagonalGaussian | None]:
    """(μ (N, nz), q(z|x) of the N images or None for an AE): the deterministic code of each
    image and, for a VAE, the posterior it is the mean of."""
    if is_vae(model):
        q = DiagonalGaussian.cat(batched(model.posterior, x))
        return q.mode(), q
    return torch.cat(batched(model.encode, x)), None


def sample_prior(
    model: AutoEncoder, n: int, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """n images decoded from z ~ N(0, I), drawn on the CPU from `seed` (device-independent)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=g).to(device)
    with torch.no_grad():
        return decode_images(model, z)
