"""The plots vaelab's figures share (PNG, matplotlib Agg), from numpy arrays (images (N, C, H, W)
or (N, H, W) in [0, 1]) or plain numbers: saved atomically, figure closed. No torch here; the
study's and the sweep's own figures are drawn where their results are read.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from vaelab.fsutil import atomic_write_bytes

Rows = Sequence[tuple[str, np.ndarray]]
"""Labelled rows of images: (row label, images (n, C, H, W))."""
P = ParamSpec("P")
R = TypeVar("R")


def closed_on_error(draw: Callable[P, R]) -> Callable[P, R]:
    """`draw`, closing the figures it opened when it fails: pyplot keeps every open figure, and
    figures read their data after opening (save closes them on success)."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        before = set(plt.get_fignums())
        try:
            return draw(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise

    return wrapper


def make_grid(
    images: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile images (N, C, H, W) in [0, 1] into one (C, H', W') float array, `nrow` per row."""
    x = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    x = x[:, None] if x.ndim == 3 else x
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    # each cell: the image with padding above and left; empty cells at the end; then the
    # padding below and right of the whole grid
    cells = np.pad(
        x, ((0, nrows * ncol - n), (0, 0), (padding, 0), (padding, 0)), constant_values=pad_value
    )
    grid = cells.reshape(nrows, ncol, c, h + padding, w + padding).transpose(2, 0, 3, 1, 4)
    grid = grid.reshape(c, nrows * (h + padding), ncol * (w + padding))
    return np.pad(grid, ((0, 0), (0, padding), (0, padding)), constant_values=pad_value)


def save(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def show_grid(ax: plt.Axes, images: np.ndarray, nrow: int, label: str | None = None) -> None:
    grid = np.moveaxis(make_grid(images, nrow=nrow, padding=2), 0, -1)
    grid = grid.squeeze(-1) if grid.shape[-1] == 1 else grid
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    if label is not None:
        ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")


def image_grid(path: str | Path, images: np.ndarray, title: str, nrow: int = 8) -> Path:
    rows = -(-len(images) // nrow)
    fig, ax = plt.subplots(figsize=(0.55 * nrow + 0.4, 0.55 * rows + 0.6))
    show_grid(ax, images, nrow)
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def image_rows(path: str | Path, rows: Rows, title: str, xlabel: str | None = None) -> Path:
    """One labelled row of images per entry (e.g. interpolation paths, latent traversals)."""
    n_cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(0.6 * n_cols + 1.2, 0.75 * len(rows) + 0.6), squeeze=False
    )
    for ax, (label, images) in zip(axes[:, 0], rows, strict=True):
        show_grid(ax, images, n_cols, label)
    if xlabel is not None:
        axes[-1, 0].set_xlabel(xlabel, fontsize=7)
    axes[0, 0].set_title(title, fontsize=10)
    return save(fig, path)


def path_curves(
    path: str | Path,
    curves: dict[str, np.ndarray],
    title: str,
    ylabel: str,
    *,
    t: np.ndarray | None = None,
    ylim: tuple[float, float] | None = None,
    hline: tuple[float, str] | None = None,
) -> Path:
    """A measure along paths: curves maps name -> (paths, T) array; mean line, min–max band.
    t: the positions of the T points in [0, 1] (default: evenly from 0 to 1)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, c in curves.items():
        pos = np.linspace(0, 1, c.shape[1]) if t is None else t
        line = ax.plot(pos, c.mean(0), "o-", ms=3, label=name)[0]
        ax.fill_between(pos, c.min(0), c.max(0), color=line.get_color(), alpha=0.15)
    if hline is not None:
        ax.axhline(hline[0], color="gray", lw=0.8, ls="--", label=hline[1])
    ax.set(
        xlabel="position along the path (0 = start image, 1 = end image)",
        ylabel=ylabel,
        title=title,
    )
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return save(fig, path)
