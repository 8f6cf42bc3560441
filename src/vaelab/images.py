"""Image grids and PNG files without torchvision: `make_grid` and a small PNG encoder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from vaelab.fsutil import atomic_write_bytes


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


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a (H, W) or (C, H, W) array, float in [0, 1] or uint8; C in {1, 3, 4}."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = np.moveaxis(a, 0, -1) if a.shape[0] in (1, 3, 4) else a
        if a.shape[-1] == 1:
            a = a[..., 0]
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = a.reshape(h, w * channels)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def save_png(path: str | Path, image: np.ndarray, scale: int = 1) -> Path:
    """Write an image atomically; `scale` enlarges by pixel repetition (crisp small digits)."""
    a = np.asarray(image)
    if scale > 1:
        a = a.repeat(scale, axis=-2).repeat(scale, axis=-1)
    return atomic_write_bytes(path, encode_png(a))


def save_grid(path: str | Path, images: torch.Tensor, nrow: int = 8, scale: int = 2) -> Path:
    return save_png(path, make_grid(images, nrow=nrow), scale=scale)
