"""Public doors onto a trained run (`vaelab.load_images`, `vaelab.encode`, ...): `run` is a run
directory or the `RunResult` of `vaelab.train` (its best checkpoint is used); images are float
tensors (N, C, H, W) in [0, 1].

    x, y = vaelab.load_images("mnist", "test", limit=16)
    grid = vaelab.reconstruct("study/runs/ae", x)          # (16, 1, 28, 28)
    path = vaelab.interpolate("study/runs/ae", x[0], x[1])  # (9, 1, 28, 28): x[0] ... x[1]
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab.data import load_split
from vaelab.evaluate.interpolation import interpolate as code_path
from vaelab.models import AutoEncoder, codes, decode_images, sample_prior
from vaelab.train.checkpoint import load_model
from vaelab.train.loop import RunResult

Run = RunResult | str | Path


def _model(run: Run, device: str) -> AutoEncoder:
    return load_model(run.run_dir if isinstance(run, RunResult) else run, "best", device)[0]


def load_images(
    dataset: str = "mnist",
    split: str = "test",
    limit: int | None = None,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    color: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, H, W) in [0, 1], labels (N,)) of a split (train, val or test), the first
    `limit` when given (`image_size`, `color`: a picture folder's, as in the run's config)."""
    x, y = load_split(dataset, split, data_dir, image_size, color)
    x, y = x[:limit], y[:limit]
    return torch.from_numpy(x).float() / 255.0, torch.from_numpy(y).long()


def encode(run: Run, images: torch.Tensor, device: str = "cpu") -> torch.Tensor:
    """The code of each image (N, nz): the AE's code, or the mean μ of a VAE's q(z|x)."""
    mu, _ = codes(_model(run, device), images.to(device))
    return mu.cpu()


def reconstruct(run: Run, images: torch.Tensor, device: str = "cpu") -> torch.Tensor:
    """Each image decoded from its code (the mean of q(z|x) for a VAE): (N, C, H, W)."""
    model = _model(run, device)
    mu, _ = codes(model, images.to(device))
    return decode_images(model, mu).cpu()


def sample(run: Run, n: int = 64, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """n images decoded from codes z ~ N(0, I), drawn from `seed` (the same on every device)."""
    return sample_prior(_model(run, device), n, seed, device).cpu()


def interpolate(
    run: Run,
    start: torch.Tensor,
    end: torch.Tensor,
    steps: int = 7,
    mode: str = "lerp",
    device: str = "cpu",
) -> torch.Tensor:
    """The decoded path (steps + 2, C, H, W) between the codes of two images (C, H, W); `mode`:
    lerp (straight line) or slerp (great circle)."""
    model = _model(run, device)
    mu, _ = codes(model, torch.stack([start, end]).to(device))
    return decode_images(model, code_path(mu[0], mu[1], steps, mode)).cpu()
