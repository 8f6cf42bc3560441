"""Estimators against exact answers: probabilistic PCA likelihood, scipy's Fréchet distance,
interpolation geometry, probes on separable data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.distributions import MultivariateNormal

from vaelab.distributions import DiagonalGaussian, standard_normal_log_prob
from vaelab.evaluate.estimators import active_units, elbo, iw_log_likelihood
from vaelab.evaluate.features import (
    frechet_distance,
    frechet_distance_features,
    knn_accuracy,
    linear_probe_accuracy,
)
from vaelab.evaluate.interpolation import interpolate, lerp, path_smoothness, slerp


class PPCA:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I): log p(x) = log N(x; b, WWᵀ + σ²I) exactly.
    The proposal is the exact posterior's diagonal, widened, so it is imperfect on purpose."""

    def __init__(self, d: int = 6, nz: int = 3, sigma2: float = 0.2, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(d, nz, generator=g, dtype=torch.float64)
        self.b = torch.randn(d, generator=g, dtype=torch.float64)
        self.sigma2 = sigma2
        m = self.W.T @ self.W + sigma2 * torch.eye(nz, dtype=torch.float64)
        self.m_inv = torch.linalg.inv(m)
        self.marginal = MultivariateNormal(
            self.b, self.W @ self.W.T + sigma2 * torch.eye(d, dtype=torch.float64)
        )

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        mu = (x.double() - self.b) @ self.W @ self.m_inv.T
        var = self.sigma2 * torch.diagonal(self.m_inv) * 2.0  # widened diagonal
        return DiagonalGaussian(mu.float(), (0.5 * var.log()).expand_as(mu).float())

    def log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean = z.double() @ self.W.T + self.b
        return (
            -0.5 * (x.double() - mean).pow(2) / self.sigma2
            - 0.5 * math.log(2 * math.pi * self.sigma2)
        ).sum(1)

    def sample_x(self, n: int, seed: int = 1) -> torch.Tensor:
        torch.manual_seed(seed)
        return self.marginal.sample((n,)).float()


def test_iw_estimate_converges_to_the_exact_ppca_likelihood():
    model = PPCA()
    x = model.sample_x(64)
    exact = model.marginal.log_prob(x.double())
    g = torch.Generator().manual_seed(0)
    est = iw_log_likelihood(model.posterior, model.log_lik, x, 5000, chunk=500, generator=g)
    assert (est - exact).abs().mean() < 0.02, (est - exact).abs().mean()
    assert abs((est - exact).mean()) < 0.01
    el, _ = elbo(model.posterior, model.log_lik, x, samples=200, generator=g)
    assert (exact - el).mean() > 0.05  # the ELBO is a strictly looser bound here


def test_iw_bound_tightens_with_k_on_average():
    model = PPCA(seed=3)
    x = model.sample_x(2048, seed=2)
    exact = model.marginal.log_prob(x.double()).mean().item()
    g = torch.Generator().manual_seed(1)
    means = [
        iw_log_likelihood(model.posterior, model.log_lik, x, k, chunk=64, generator=g).mean().item()
        for k in (1, 10, 100, 1000)
    ]
    assert all(b >= a - 5e-3 for a, b in itertools.pairwise(means)), means
    assert means[-1] <= exact + 0.01 and exact - means[-1] < exact - means[0]


def test_k1_equals_the_elbo_in_expectation():
    model = PPCA(seed=4)
    x = model.sample_x(8, seed=5).repeat(2000, 1)  # many independent one-sample estimates
    g = torch.Generator().manual_seed(2)
    k1 = iw_log_likelihood(model.posterior, model.log_lik, x, 1, generator=g)
    el, _ = elbo(model.posterior, model.log_lik, x, samples=50, generator=g)
    se = k1.std() / math.sqrt(len(k1))
    assert abs(k1.mean() - el.mean()) < 4 * se + 1e-3


def test_iw_memory_is_chunked_and_chunks_agree():
    """K = 300 samples drawn 7 at a time: no chunk above 7, every sample used once, and the
    streamed logsumexp equals the one over all 300 log-weights at once."""
    model = PPCA(seed=6)
    x = model.sample_x(4)
    drawn: list[torch.Tensor] = []

    def log_lik(xr: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        drawn.append(z.view(-1, len(x), z.shape[-1]))  # (c, B, nz)
        return model.log_lik(xr, z)

    g = torch.Generator().manual_seed(9)
    got = iw_log_likelihood(model.posterior, log_lik, x, 300, chunk=7, generator=g)
    assert [len(z) for z in drawn] == [7] * 42 + [6]
    z = torch.cat(drawn)  # (K, B, nz)
    q = model.posterior(x)
    log_px = torch.stack([model.log_lik(x, zk) for zk in z])  # (K, B)
    log_w = log_px + standard_normal_log_prob(z).double() - q.log_prob(z).double()
    torch.testing.assert_close(got, torch.logsumexp(log_w, 0) - math.log(300), rtol=0, atol=1e-9)
    one_chunk = iw_log_likelihood(
        model.posterior,
        model.log_lik,
        x,
        300,
        chunk=300,
        generator=torch.Generator().manual_seed(9),
    )
    assert (one_chunk - got).abs().max() < 0.2  # same estimator, other draws


def _fd_scipy(a: np.ndarray, b: np.ndarray) -> float:
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_and_is_zero_on_itself():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(loc=0.5, size=(2500, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance_features(a, b) == pytest.approx(_fd_scipy(a, b), rel=1e-6)
    assert abs(frechet_distance_features(a, a)) < 1e-8
    mu, cov = np.zeros(3), np.eye(3)
    assert frechet_distance(mu, cov, mu + 1, 4 * cov) == pytest.approx(3 + 3 * 1.0)


def test_lerp_and_slerp_geometry():
    torch.manual_seed(0)
    a, b = torch.randn(64), torch.randn(64)
    for mode in ("lerp", "slerp"):
        path = interpolate(a, b, 5, mode)
        assert path.shape == (7, 64)
        torch.testing.assert_close(path[0], a)
        torch.testing.assert_close(path[-1], b)
    u, v = a / a.norm() * 8, b / b.norm() * 8
    norms = slerp(u, v, torch.linspace(0, 1, 11)).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((11,), 8.0))  # slerp stays on the sphere
    mid = lerp(u, v, torch.tensor([0.5]))[0].norm()
    assert mid < 8 * 0.8  # ≈ 8/√2 for near-orthogonal codes: linear midpoints shrink
    torch.testing.assert_close(slerp(a, 2 * a, torch.tensor([0.5]))[0], 1.5 * a)  # parallel


def test_path_smoothness_of_a_linear_fade():
    a, b = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    path = torch.stack([a + t * (b - a) for t in torch.linspace(0, 1, 6)])
    s = path_smoothness(path)
    assert s["path_length_ratio"] == pytest.approx(1.0)
    assert s["max_step_fraction"] == pytest.approx(0.2)
    jumpy = path.clone()
    jumpy[1:5] = a
    assert path_smoothness(jumpy)["max_step_fraction"] == pytest.approx(1.0)


def test_active_units_counts_dimensions_with_variance():
    torch.manual_seed(0)
    mu = torch.zeros(1000, 10)
    mu[:, :3] = torch.randn(1000, 3)
    mu[:, 3] = 0.01 * torch.randn(1000)  # variance 1e-4: inactive
    n, var = active_units(mu)
    assert n == 3 and var.shape == (10,)


def test_probes_on_separable_and_random_codes():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(600) % 3
    centers = torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])
    z = centers[y] + 0.3 * torch.randn(600, 3, generator=g)
    assert linear_probe_accuracy(z[:400], y[:400], z[400:], y[400:]) == 1.0
    assert knn_accuracy(z[:400], y[:400], z[400:], y[400:]) == 1.0
    noise = torch.randn(600, 3, generator=g)
    assert linear_probe_accuracy(noise[:400], y[:400], noise[400:], y[400:]) < 0.6


def test_knn_matches_a_brute_force_vote():
    g = torch.Generator().manual_seed(1)
    ztr, zte = torch.randn(200, 5, generator=g), torch.randn(50, 5, generator=g)
    ytr, yte = torch.randint(0, 4, (200,), generator=g), torch.randint(0, 4, (50,), generator=g)
    m, s = ztr.mean(0), ztr.std(0)
    a, b = (ztr - m) / s, (zte - m) / s
    nn = torch.cdist(b, a).topk(5, largest=False).indices
    pred = torch.mode(ytr[nn], dim=1).values  # ties: smallest label, as argmax of counts
    expect = float((pred == yte).float().mean())
    assert knn_accuracy(ztr, ytr, zte, yte, k=5, chunk=7) == pytest.approx(expect)
