"""Pure loss functions with stated reductions.

Units used everywhere in vaelab (logs, evaluation, report):
- reconstruction: per-image *sum* over pixels — SSE/(2σ²) for the Gaussian decoder (= SSE at the
  default σ² = ½), BCE for the Bernoulli decoder — then averaged over the batch;
- KL(q(z|x) ‖ N(0, I)): per-image *sum* over latent dimensions, in nats, averaged over the batch
  (`DiagonalGaussian.kl`, the one copy of the formula);
- total = reconstruction + β·KL. With σ² = ½, β = 1 this is the negative ELBO minus the constant
  (D/2)·log(2πσ²) = (D/2)·log π (≈ 448.7 nats for D = 784), Kingma & Welling (2014) eq. 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vaelab.distributions import DiagonalGaussian
from vaelab.models import ModelOutput


def sse(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared errors between sigmoid(logits) and x: (B,)."""
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)


def bce(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image binary cross-entropy from logits (stable, autocast-safe): (B,) nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def reconstruction_loss(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, sigma2: float = 0.5
) -> torch.Tensor:
    """The training reconstruction term per image (B,): −log p(x|z) without its constant."""
    if likelihood == "gaussian":
        return sse(logits, x) / (2.0 * sigma2)
    if likelihood == "bernoulli":
        return bce(logits, x)
    raise ValueError(f"unknown likelihood {likelihood!r}")


def neg_log_likelihood(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, sigma2: float = 0.5
) -> torch.Tensor:
    """Exact −log p(x|z) per image (B,) in nats, constants included (a density for Gaussian)."""
    nll = reconstruction_loss(logits, x, likelihood, sigma2)
    if likelihood == "gaussian":  # + (D/2)·log(2πσ²), the part of −log N(x; x̂, σ²I) free of x̂
        nll = nll + 0.5 * x[0].numel() * math.log(2 * math.pi * sigma2)
    return nll


@dataclass
class LossParts:
    """Batch means of the objective and its parts (scalars); see the module docstring."""

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def objective(
    out: ModelOutput, x: torch.Tensor, beta: float, likelihood: str, sigma2: float = 0.5
) -> LossParts:
    """reconstruction + β·KL, batch-averaged. The AE (no posterior) has KL = 0."""
    recon = reconstruction_loss(out.logits.float(), x, likelihood, sigma2).mean()
    if out.log_sigma is None:
        return LossParts(total=recon, recon=recon, kl=torch.zeros((), device=x.device))
    kl = DiagonalGaussian(out.mu, out.log_sigma).to(torch.float32).kl().mean()
    # β = 0 must mean *no* KL term (not 0·KL, which still propagates NaN/inf gradients).
    total = recon + beta * kl if beta > 0 else recon
    return LossParts(total=total, recon=recon, kl=kl)
