"""Paths between two codes, decoded paths between test images, and how a decoded path behaves."""

from __future__ import annotations

import torch

from vaelab.errors import ConfigError
from vaelab.models import AutoEncoder
from vaelab.runtime import stream_seed


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1−t)·a + t·b for a, b (nz,) and t (T,) → (T, nz)."""
    t = t[:, None]
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sin((1−t)θ)/sin θ·a + sin(tθ)/sin θ·b, θ = ∠(a, b) (White 2016): keeps the norm of prior
    samples (≈√nz) where lerp midpoints shrink towards √(nz/2); lerp where sin θ vanishes."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1, 1))
    if torch.sin(theta).abs() < 1e-6:
        return lerp(a, b, t)
    t = t[:, None]
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str) -> torch.Tensor:
    """Start, `steps` interior codes, end: (steps + 2, nz)."""
    t = torch.linspace(0, 1, steps + 2, dtype=a.dtype, device=a.device)
    if mode == "lerp":
        return lerp(a, b, t)
    if mode == "slerp":
        return slerp(a, b, t)
    raise ValueError(f"mode must be lerp or slerp, got {mode!r}")


def path_smoothness(images: torch.Tensor) -> dict[str, float]:
    """How evenly a decoded path (T, C, H, W) moves: path_length_ratio Σ‖xᵢ₊₁ − xᵢ‖ / ‖x_T − x_0‖
    (1 = a straight fade), max_step_fraction the largest step's share of it (1/(T−1) = even)."""
    flat = images.flatten(1).double()
    steps = (flat[1:] - flat[:-1]).norm(dim=1)
    length = steps.sum()
    direct = (flat[-1] - flat[0]).norm().clamp_min(1e-12)
    return {
        "path_length_ratio": float(length / direct),
        "max_step_fraction": float(steps.max() / length.clamp_min(1e-12)),
    }


def pick_pairs(y: torch.Tensor, a: int, b: int, n: int, seed: int) -> list[tuple[int, int]]:
    """n (index of label a, index of label b) pairs of distinct images, seeded from `seed` (the
    run's) through the `eval_pairs` stream: one stream per label pair, so adding a pair never
    changes another's images."""
    g = torch.Generator().manual_seed(stream_seed(seed, "eval_pairs", key=10 * a + b))
    picked = []
    for label in (a, b):
        idx = torch.nonzero(y.cpu() == label).flatten()
        if len(idx) == 0:
            raise ConfigError(
                f"no test images with label {label}; pick other --from-label/--to-label values"
            )
        picked.append(idx[torch.randperm(len(idx), generator=g)][:n].tolist())
    return list(zip(*picked, strict=False))


@torch.no_grad()
def interpolation_paths(
    model: AutoEncoder, x: torch.Tensor, pairs: list[tuple[int, int]], steps: int, mode: str
) -> list[torch.Tensor]:
    """Decoded paths (steps + 2, C, H, W) per pair, ends the input images; mode `pixel` is the
    model-free baseline, a straight cross-fade (an overlay of two digits in the middle)."""
    if mode == "pixel":
        t = torch.linspace(0, 1, steps + 2, device=x.device)[:, None, None, None]
        return [(1 - t) * x[ia] + t * x[ib] for ia, ib in pairs]
    z_ends = model.encode(x[[i for p in pairs for i in p]]).unflatten(0, (-1, 2))
    out = []
    for (ia, ib), (za, zb) in zip(pairs, z_ends, strict=True):
        imgs = torch.sigmoid(model.decode(interpolate(za, zb, steps, mode)))
        imgs[0], imgs[-1] = x[ia], x[ib]
        out.append(imgs)
    return out
