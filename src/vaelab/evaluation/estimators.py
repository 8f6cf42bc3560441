"""Likelihood estimators for latent-variable models, independent of any network.

A model enters through two callables, so the estimators can be checked against a model whose
exact likelihood is known (probabilistic PCA, see the tests):
  posterior(x) -> (μ, log σ): the diagonal-Gaussian proposal q(z|x), each (B, nz);
  log_lik(x, z) -> log p(x|z): x (B, ...), z (B, nz) -> (B,) nats, constants included.
Everything runs in float64 accumulators; chunks bound memory whatever K is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vaelab.losses import kl_divergence

Posterior = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
LogLik = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOG_2PI = math.log(2 * math.pi)


def log_normal_std(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dim."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag σ²) summed over the last dim."""
    return (-0.5 * ((z - mu) / log_sigma.exp()).pow(2) - log_sigma - 0.5 * _LOG_2PI).sum(-1)


@torch.inference_mode()
def iw_log_likelihood(
    posterior: Posterior,
    log_lik: LogLik,
    x: torch.Tensor,
    k: int,
    *,
    chunk: int = 128,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Importance-weighted estimate log p̂(x) per image (B,), Burda et al. (2016) eq. 8:

        log p̂(x) = logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K,  z_k ~ q(z|x).

    K = 1 is the ELBO's one-sample estimate. The K samples are drawn `chunk` at a time and
    combined with a streaming logsumexp, so memory is O(B·chunk) whatever K is.
    """
    mu, log_sigma = (t.float() for t in posterior(x))
    b, nz = mu.shape
    run_max = torch.full((b,), -math.inf, dtype=torch.float64, device=x.device)
    run_sum = torch.zeros(b, dtype=torch.float64, device=x.device)
    done = 0
    while done < k:
        c = min(chunk, k - done)
        eps = torch.randn(c, b, nz, device=x.device, generator=generator)
        z = mu + log_sigma.exp() * eps  # (c, B, nz)
        xr = x.unsqueeze(0).expand(c, *x.shape).reshape(c * b, *x.shape[1:])
        log_px = log_lik(xr, z.reshape(c * b, nz)).view(c, b).double()
        log_w = log_px + log_normal_std(z).double() - log_normal_diag(z, mu, log_sigma).double()
        new_max = torch.maximum(run_max, log_w.max(0).values)
        run_sum = run_sum * torch.exp(run_max - new_max) + torch.exp(log_w - new_max).sum(0)
        run_max = new_max
        done += c
    return run_max + torch.log(run_sum) - math.log(k)


@torch.inference_mode()
def elbo(
    posterior: Posterior,
    log_lik: LogLik,
    x: torch.Tensor,
    *,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ELBO, KL) per image in nats: E_q[log p(x|z)] − KL(q‖p), KL in closed form."""
    mu, log_sigma = (t.float() for t in posterior(x))
    kl = kl_divergence(mu, log_sigma)
    rec = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for _ in range(samples):
        z = mu + log_sigma.exp() * torch.randn(mu.shape, device=x.device, generator=generator)
        rec += log_lik(x, z).double()
    return rec / samples - kl.double(), kl.double()


def active_units(mu: torch.Tensor, threshold: float = 1e-2) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): unit u is active if Cov_x(E_q[z_u | x]) > threshold. mu: (N, nz)."""
    var = mu.double().var(0, unbiased=True)
    return int((var > threshold).sum()), var
