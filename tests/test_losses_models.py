"""Losses against reference implementations (torch.distributions) and model plumbing."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vaelab.config import TrainConfig
from vaelab.distributions import DiagonalGaussian
from vaelab.losses import (
    neg_log_likelihood,
    objective,
    reconstruction_loss,
)
from vaelab.models import VAE, AutoEncoder, build_model


def test_objective_kl_is_the_posteriors_kl():
    torch.manual_seed(0)
    model = VAE(latent_dim=8)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    parts = objective(out, x, beta=1.0, likelihood="gaussian")
    assert torch.equal(parts.kl, model.posterior(x).kl().mean())


def test_gaussian_loss_is_the_exact_nll_up_to_the_stated_constant():
    g = torch.Generator().manual_seed(1)
    logits, x = torch.randn(8, 1, 28, 28, generator=g), torch.rand(8, 1, 28, 28, generator=g)
    ref = -Normal(torch.sigmoid(logits), math.sqrt(0.5)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(neg_log_likelihood(logits, x, "gaussian", 0.5), ref)
    sse = (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_loss(logits, x, "gaussian", 0.5), sse)
    # with σ² = ½ the constant is (D/2)·log π ≈ 448.7 nats for D = 784
    constant = neg_log_likelihood(logits, x, "gaussian", 0.5) - sse
    torch.testing.assert_close(constant, torch.full((8,), 392 * math.log(math.pi)))
    torch.testing.assert_close(ref - sse, torch.full((8,), 392 * math.log(math.pi)))
    ref2 = -Normal(torch.sigmoid(logits), math.sqrt(0.1)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(neg_log_likelihood(logits, x, "gaussian", 0.1), ref2)


def test_bernoulli_loss_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 1, 28, 28, generator=g) * 3
    x = (torch.rand(8, 1, 28, 28, generator=g) > 0.5).float()
    ref = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_loss(logits, x, "bernoulli"), ref)


def test_gradient_reaches_encoder_through_the_reparametrised_sample():
    torch.manual_seed(0)
    model = VAE(latent_dim=8)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    parts = objective(out, x, beta=0.0, likelihood="gaussian")
    grad = torch.autograd.grad(parts.total, out.log_sigma, retain_graph=True)[0]
    assert grad.abs().sum() > 0  # σ only affects the loss through z = μ + σ·ε
    parts.total.backward()
    assert model.encoder.features[0].weight.grad.abs().sum() > 0


def test_beta_zero_has_no_kl_term_and_ae_has_kl_zero():
    torch.manual_seed(0)
    model = VAE(latent_dim=8)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    out.mu.data.fill_(1e30)  # a KL of inf must not leak into a β = 0 loss
    parts = objective(out, x, beta=0.0, likelihood="gaussian")
    assert parts.total is parts.recon and not torch.isfinite(parts.kl)
    ae_parts = objective(AutoEncoder(latent_dim=8)(x), x, beta=5.0, likelihood="gaussian")
    assert ae_parts.kl.item() == 0.0 and ae_parts.total is ae_parts.recon
    p1 = objective(model(x), x, beta=2.0, likelihood="gaussian")
    torch.testing.assert_close(p1.total, p1.recon + 2.0 * p1.kl)


@pytest.mark.parametrize("size", [28, 32])
def test_shapes_and_configurable_sizes(size):
    cfg = TrainConfig(model="vae", latent_dim=16, channels=[8, 16, 32, 48], norm=False)
    model = build_model(cfg, (3, size, size))
    out = model(torch.rand(2, 3, size, size))
    assert out.logits.shape == (2, 3, size, size) and out.mu.shape == (2, 16)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(2, 3, size, size)
    mean = model(x, sample=False)
    torch.testing.assert_close(mean.z, mean.mu)  # sample=False decodes the posterior mean
    torch.testing.assert_close(mean.logits, model.decode(mean.mu))
    assert not torch.allclose(model(x).z, mean.mu)  # sample=True draws z = μ + σ·ε


def test_log_sigma_is_clamped():
    model = VAE(latent_dim=4)
    with torch.no_grad():
        model.encoder.to_latent.bias.fill_(1e4)
    q = model.posterior(torch.rand(2, 1, 28, 28))
    assert q.log_sigma.max().item() == 10.0 and isinstance(q, DiagonalGaussian)


def test_forward_samples_the_posterior_and_encode_is_its_mode():
    model = VAE(latent_dim=4).eval()
    x = torch.rand(3, 1, 28, 28)
    q = model.posterior(x)
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    assert torch.equal(out.z, q.sample())  # the global RNG drives training's noise
    assert torch.equal(out.mu, q.mu) and torch.equal(out.log_sigma, q.log_sigma)
    assert torch.equal(model.encode(x), q.mode()) and torch.equal(model(x, sample=False).z, q.mu)
    ae = AutoEncoder(latent_dim=4)
    assert not hasattr(ae, "embed") and not hasattr(model, "reparameterize")
