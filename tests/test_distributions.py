"""DiagonalGaussian against reference answers from torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaelab.distributions import (
    LOG_SIGMA_MAX,
    LOG_SIGMA_MIN,
    DiagonalGaussian,
    standard_normal_log_prob,
)


def _posterior(seed: int = 0, b: int = 16, nz: int = 8) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(b, nz, generator=g) * 2, torch.randn(b, nz, generator=g))


def _reference(q: DiagonalGaussian) -> Normal:
    return Normal(q.mu, q.log_sigma.exp())


def test_kl_matches_torch_distributions():
    q = _posterior()
    ref = kl_divergence(_reference(q), Normal(0.0, 1.0))  # (B, nz)
    torch.testing.assert_close(q.kl_per_dim(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q.kl(), ref.sum(1), rtol=1e-5, atol=1e-5)
    prior = DiagonalGaussian(torch.zeros(2, 8), torch.zeros(2, 8))
    assert torch.equal(prior.kl(), torch.zeros(2))


def test_log_prob_matches_torch_distributions_with_its_constant():
    q = _posterior(1)
    z = torch.randn(5, 16, 8, generator=torch.Generator().manual_seed(2))  # (k, B, nz)
    ref = _reference(q).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref, rtol=1e-5, atol=1e-4)
    std_ref = Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(standard_normal_log_prob(z), std_ref, rtol=1e-5, atol=1e-4)
    # the −½·log 2π constant is included: log N(0; 0, 1) per dim
    assert float(standard_normal_log_prob(torch.zeros(1, 1))) == pytest.approx(
        -0.5 * math.log(2 * math.pi)
    )


def test_mode_std_and_moments_of_samples():
    q = _posterior(3, b=2, nz=3)
    assert torch.equal(q.mode(), q.mu) and torch.equal(q.std, q.log_sigma.exp())
    z = q.sample_n(20_000, torch.Generator().manual_seed(4))  # (k, B, nz)
    assert z.shape == (20_000, 2, 3)
    torch.testing.assert_close(z.mean(0), q.mu, atol=0.05 * float(q.std.max()), rtol=0)
    torch.testing.assert_close(z.std(0), q.std, rtol=0.03, atol=0)


def test_a_generator_seeded_sample_reproduces_and_the_gradient_flows():
    mu = torch.randn(4, 5, generator=torch.Generator().manual_seed(5), requires_grad=True)
    log_sigma = torch.zeros(4, 5, requires_grad=True)
    q = DiagonalGaussian(mu, log_sigma)
    a = q.sample(torch.Generator().manual_seed(6))
    b = q.sample(torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, q.sample(torch.Generator().manual_seed(7)))
    eps = torch.randn(4, 5, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, mu + log_sigma.exp() * eps)  # z = μ + σ·ε, ε from the generator
    # k draws are one draw of (k, B, nz) normals from the generator
    k = q.sample_n(3, torch.Generator().manual_seed(6))
    eps3 = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(6))
    assert torch.equal(k, mu + log_sigma.exp() * eps3)
    # reparameterised: ∂z/∂μ = 1, ∂z/∂log σ = σ·ε
    a.sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(log_sigma.grad, eps)


def test_sample_without_generator_draws_from_the_global_rng():
    q = _posterior(8, b=3, nz=2)
    torch.manual_seed(9)
    a = q.sample()
    torch.manual_seed(9)
    assert torch.equal(a, q.mu + q.log_sigma.exp() * torch.randn_like(q.mu))


def test_from_encoder_clamps_and_cat_and_to_keep_the_parameters():
    h = torch.tensor([[0.5, -1.0, 100.0, -100.0]])  # [μ (2), log σ (2)]
    q = DiagonalGaussian.from_encoder(h)
    assert q.mu.tolist() == [[0.5, -1.0]]
    assert q.log_sigma.tolist() == [[LOG_SIGMA_MAX, LOG_SIGMA_MIN]]
    both = DiagonalGaussian.cat([q, _posterior(b=1, nz=2)])
    assert both.mu.shape == (2, 2) and torch.equal(both.log_sigma[0], q.log_sigma[0])
    d = both.to(torch.float64)
    assert d.mu.dtype == d.log_sigma.dtype == torch.float64
    assert torch.equal(d.mu.float(), both.mu)
