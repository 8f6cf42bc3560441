"""The β-VAE posterior q(z|x) = N(μ, diag σ²) and the N(0, I) prior's log-density: the one place
for the reparameterised sample, the KL and the log-density (after diffusers'
`DiagonalGaussianDistribution`, parameterised by log σ rather than log σ²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

# log σ is clamped for stability: σ in [e^-15, e^10] (the bounds diffusers uses for log σ²/2).
LOG_SIGMA_MIN, LOG_SIGMA_MAX = -15.0, 10.0
_LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dim: z (..., nz) → (...), nats."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)


@dataclass(frozen=True)
class DiagonalGaussian:
    """N(μ, diag σ²) per image. mu, log_sigma: (B, nz), same dtype and device."""

    mu: torch.Tensor
    log_sigma: torch.Tensor

    @classmethod
    def from_encoder(cls, h: torch.Tensor) -> DiagonalGaussian:
        """From an encoder output h (B, 2·nz) = [μ, log σ], log σ clamped to a stable range."""
        mu, log_sigma = h.chunk(2, dim=1)
        return cls(mu, log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))

    @classmethod
    def cat(cls, parts: list[DiagonalGaussian]) -> DiagonalGaussian:
        """The posteriors of consecutive batches as one over all their images."""
        return cls(torch.cat([p.mu for p in parts]), torch.cat([p.log_sigma for p in parts]))

    @property
    def std(self) -> torch.Tensor:
        """σ (B, nz)."""
        return self.log_sigma.exp()

    def to(self, *args: Any, **kwargs: Any) -> DiagonalGaussian:
        """μ and log σ moved or cast as by `torch.Tensor.to`."""
        return DiagonalGaussian(self.mu.to(*args, **kwargs), self.log_sigma.to(*args, **kwargs))

    def mode(self) -> torch.Tensor:
        """μ (B, nz): the deterministic code used for reconstructions, probes and interpolation."""
        return self.mu

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = μ + σ·ε, ε ~ N(0, I), (B, nz): gradients flow to μ and σ (Kingma & Welling 2014).
        Without a generator ε comes from torch's global RNG."""
        return self.sample_n(1, generator)[0]

    def sample_n(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """k samples per image, (k, B, nz); one draw of k·B·nz normals from `generator`."""
        mu = self.mu
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        return self.reparameterize(eps)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """z = μ + σ·ε for standard-normal ε (B, nz) or (k, B, nz)."""
        return self.mu + self.std * eps

    def kl_per_dim(self) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, 1)) per image and latent dim (B, nz), nats:
        ½(μ² + σ² − 1 − 2 log σ) (Kingma & Welling 2014, appendix B)."""
        mu, log_sigma = self.mu, self.log_sigma
        return 0.5 * (mu.pow(2) + (2 * log_sigma).exp() - 1.0 - 2.0 * log_sigma)

    def kl(self) -> torch.Tensor:
        """KL(q ‖ N(0, I)) per image, summed over latent dims (B,), nats."""
        return self.kl_per_dim().sum(1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) summed over the last dim, constants included: z (..., B, nz) → (..., B)."""
        mu, log_sigma = self.mu, self.log_sigma
        return (-0.5 * ((z - mu) / self.std).pow(2) - log_sigma - 0.5 * _LOG_2PI).sum(-1)
