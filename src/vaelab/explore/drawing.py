"""Make a mouse drawing look like the data: MNIST's own size normalisation and centring."""

from __future__ import annotations

import torch
import torch.nn.functional as F

INK = 0.05  # pixels above this count as ink when finding the bounding box


def center_like_mnist(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) in [0, 1] → the same drawing preprocessed the way MNIST digits were.

    LeCun et al. scaled each digit's bounding box to fit a 20×20 box (aspect ratio kept) and
    placed it in the 28×28 field with its centre of mass at the centre. A drawing that skips this
    (small, off-centre) lands far from the test codes for reasons that have nothing to do with its
    shape. Other image sizes get the same proportions (box = 20/28 of the side). An empty drawing
    is returned unchanged.
    """
    h, w = x.shape[2:]
    ink = x[0].mean(0)  # (H, W)
    rows = torch.nonzero(ink.amax(1) > INK).flatten()
    cols = torch.nonzero(ink.amax(0) > INK).flatten()
    if len(rows) == 0:
        return x
    crop = x[:, :, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]
    box = round(20 / 28 * min(h, w))
    scale = box / max(crop.shape[2], crop.shape[3])
    size = (max(1, round(crop.shape[2] * scale)), max(1, round(crop.shape[3] * scale)))
    small = F.interpolate(crop, size=size, mode="bilinear", antialias=True, align_corners=False)
    small = small.clamp(0, 1)  # (1, C, h', w')
    mass = small[0].mean(0)
    total = mass.sum().clamp_min(1e-12)
    cy = float((mass.sum(1) * torch.arange(size[0], dtype=mass.dtype)).sum() / total)
    cx = float((mass.sum(0) * torch.arange(size[1], dtype=mass.dtype)).sum() / total)
    # MNIST's centres of mass sit at pixel index ≈ 14 (= H/2), measured on its test set.
    top = min(max(round(h / 2 - cy), 0), h - size[0])
    left = min(max(round(w / 2 - cx), 0), w - size[1])
    out = torch.zeros_like(x)
    out[:, :, top : top + size[0], left : left + size[1]] = small
    return out
