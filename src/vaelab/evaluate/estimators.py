"""Likelihood estimators for latent-variable models, independent of any network: a model enters
as posterior(x) -> q(z|x) (B, nz) and log_lik(x, z) -> log p(x|z) (B,) nats, constants included,
so the tests check them against probabilistic PCA's exact likelihood. Accumulators are float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vaelab.distributions import DiagonalGaussian, standard_normal_log_prob

Posterior = Callable[[torch.Tensor], DiagonalGaussian]
LogLik = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    """log p̂(x) = logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K, z_k ~ q(z|x),
    per image (B,) (Burda et al. 2016 eq. 8); samples drawn `chunk` at a time into a streaming
    logsumexp, so memory is O(B·chunk) whatever K is."""
    q = posterior(x).to(torch.float32)
    b, nz = q.mu.shape
    run_max = torch.full((b,), -math.inf, dtype=torch.float64, device=x.device)
    run_sum = torch.zeros(b, dtype=torch.float64, device=x.device)
    for done in range(0, k, chunk):
        c = min(chunk, k - done)
        z = q.sample_n(c, generator)  # (c, B, nz)
        xr = x.unsqueeze(0).expand(c, *x.shape).reshape(c * b, *x.shape[1:])
        log_px = log_lik(xr, z.reshape(c * b, nz)).view(c, b).double()
        log_w = log_px + standard_normal_log_prob(z).double() - q.log_prob(z).double()
        new_max = torch.maximum(run_max, log_w.max(0).values)
        run_sum = run_sum * torch.exp(run_max - new_max) + torch.exp(log_w - new_max).sum(0)
        run_max = new_max
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
    q = posterior(x).to(torch.float32)
    kl = q.kl()
    rec = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for _ in range(samples):
        rec += log_lik(x, q.sample(generator)).double()
    return rec / samples - kl.double(), kl.double()


def active_units(mu: torch.Tensor, threshold: float = 1e-2) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): unit u is active if Cov_x(E_q[z_u | x]) > threshold. mu: (N, nz)."""
    var = mu.double().var(0, unbiased=True)
    return int((var > threshold).sum()), var
