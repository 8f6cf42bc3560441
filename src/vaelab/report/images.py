"""Image grids without torchvision: `make_grid` tiles a batch into one array for figures."""

from __future__ import annotations

import numpy as np
import torch


def make_grid(
    images: torch.Tensor | np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] into one (C, H', W') float array, `nrow` per row."""
    x = torch.as_tensor(images).detach().float().cpu().clamp(0, 1).numpy()
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full(
        (c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
        pad_value,
        dtype=np.float32,
    )
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid
