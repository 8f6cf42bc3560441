"""The 2-D latent map (PCA of test codes) and the most informative latent dimensions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelab.distributions import DiagonalGaussian


@dataclass
class LatentMap:
    """A 2-D view of nz-dimensional codes: xy = (z − mean) · basis, and back z = mean + basis · xy.

    For nz = 2 the basis is the identity and the mean zero, so map coordinates are the codes.
    A map point decodes to the code on the plane through the mean of the test codes spanned by the
    two leading principal axes (the other nz − 2 coordinates sit at their test mean)."""

    mean: torch.Tensor  # (nz,)
    basis: torch.Tensor  # (nz, 2), orthonormal columns
    explained: tuple[float, float]
    """Share of the test codes' variance along each axis (1, 0 for nz = 1; exact when nz = 2)."""
    exact: bool

    def to_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, nz) codes → (B, 2) map coordinates."""
        return (z.detach().double().cpu() - self.mean) @ self.basis

    def to_code(self, xy: torch.Tensor) -> torch.Tensor:
        """(B, 2) map coordinates → (B, nz) codes (float32)."""
        return (self.mean + xy.double() @ self.basis.T).float()


def fit_map(mu: torch.Tensor) -> LatentMap:
    """PCA of codes μ (N, nz); axis signs fixed so the same codes always give the same picture."""
    mu = mu.double().cpu()
    nz = mu.shape[1]
    if nz <= 2:
        basis = torch.eye(nz, 2, dtype=torch.float64)
        var = mu.var(0) if len(mu) > 1 else torch.ones(nz, dtype=torch.float64)
        shares = [*(var / var.sum().clamp_min(1e-300)).tolist(), 0.0]
        return LatentMap(torch.zeros(nz, dtype=torch.float64), basis, (shares[0], shares[1]), True)
    mean = mu.mean(0)
    _, s, vh = torch.linalg.svd(mu - mean, full_matrices=False)
    basis = vh[:2].T.clone()  # (nz, 2)
    flip = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    basis *= torch.where(flip == 0, 1.0, flip)
    total = s.pow(2).sum().clamp_min(1e-300)
    explained = (float(s[0] ** 2 / total), float(s[1] ** 2 / total))
    return LatentMap(mean, basis, explained, False)


@dataclass
class LatentDim:
    index: int
    score: float
    """Mean KL per image in nats (VAE) or the variance of μ (AE) of this dimension."""
    lo: float
    hi: float
    """Slider range: the test codes' mean ± 3 standard deviations, widened to their min/max."""


def informative_dims(
    mu: torch.Tensor, posterior: DiagonalGaussian | None, k: int
) -> tuple[str, list[LatentDim]]:
    """The k dimensions that carry the most: (score name, dims by decreasing score).

    A VAE's KL per dimension measures the information its posterior carries about the image
    (collapsed dims have KL ≈ 0 whatever their μ spread); an AE has no posterior, so the variance of
    its codes along each dimension stands in."""
    mu = mu.double().cpu()
    if posterior is not None:
        name, score = "KL (nats)", posterior.to("cpu", torch.float64).kl_per_dim().mean(0)
    else:
        name, score = "variance of μ", mu.var(0)
    order = torch.argsort(score, descending=True)[: min(k, mu.shape[1])]
    mean, std = mu.mean(0), mu.std(0)
    lo = torch.minimum(mean - 3 * std, mu.min(0).values)
    hi = torch.maximum(mean + 3 * std, mu.max(0).values)
    dims = [LatentDim(int(d), float(score[d]), float(lo[d]), float(hi[d])) for d in order]
    return name, dims
