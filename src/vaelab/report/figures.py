"""Figures (PNG, matplotlib Agg): grids of digits with titles, curves with labelled axes.

Each function takes plain arrays/tensors and a path, saves atomically and closes its figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import ticker

from vaelab.fsutil import atomic_write_bytes
from vaelab.report.images import make_grid


def _save(fig: plt.Figure, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _show_grid(ax: plt.Axes, images: torch.Tensor, nrow: int) -> None:
    grid = make_grid(images, nrow=nrow, padding=2)
    ax.imshow(
        np.moveaxis(grid, 0, -1).squeeze(-1) if grid.shape[0] == 1 else np.moveaxis(grid, 0, -1),
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(path: str | Path, images: torch.Tensor, title: str, nrow: int = 8) -> Path:
    rows = -(-len(images) // nrow)
    fig, ax = plt.subplots(figsize=(0.55 * nrow + 0.4, 0.55 * rows + 0.6))
    _show_grid(ax, images, nrow)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def reconstructions(
    path: str | Path, inputs: torch.Tensor, outputs: torch.Tensor, title: str
) -> Path:
    """Inputs (top row) above their reconstructions (bottom row)."""
    n = len(inputs)
    fig, axes = plt.subplots(2, 1, figsize=(0.55 * n + 0.8, 1.9))
    _show_grid(axes[0], inputs, n)
    _show_grid(axes[1], outputs, n)
    axes[0].set_ylabel("input", fontsize=9)
    axes[1].set_ylabel("output", fontsize=9)
    axes[0].set_title(title, fontsize=10)
    return _save(fig, path)


def training_curves(path: str | Path, records: list[dict], title: str) -> Path:
    """Per-iteration reconstruction and KL (log scale), with validation per epoch."""
    train = [r for r in records if "train/recon" in r]
    val = [r for r in records if "val/recon" in r]
    has_kl = any(r.get("train/kl", 0) > 0 for r in train)
    fig, axes = plt.subplots(
        1, 2 if has_kl else 1, figsize=(10 if has_kl else 5.5, 3.4), squeeze=False
    )
    ax = axes[0, 0]
    ax.plot(
        [r["step"] for r in train],
        [r["train/recon"] for r in train],
        lw=0.8,
        label="train (per logged step)",
    )
    ax.plot(
        [r["step"] for r in val],
        [r["val/recon"] for r in val],
        "o-",
        ms=3,
        label="validation (per epoch)",
    )
    ax.set(
        xlabel="iteration",
        ylabel="reconstruction (nats / SSE per image)",
        yscale="log",
        title="reconstruction",
    )
    ax.legend(fontsize=8)
    if has_kl:
        ax = axes[0, 1]
        ax.plot(
            [r["step"] for r in train],
            [max(r["train/kl"], 1e-8) for r in train],
            lw=0.8,
            label="train",
        )
        ax.plot(
            [r["step"] for r in val],
            [max(r["val/kl"], 1e-8) for r in val],
            "o-",
            ms=3,
            label="validation",
        )
        ax.set(xlabel="iteration", ylabel="KL (nats per image)", yscale="log", title="KL")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def interpolation_strips(
    path: str | Path, strips: Sequence[torch.Tensor], labels: Sequence[str], title: str
) -> Path:
    """One row per path: start image, interpolated decodes, end image."""
    n_rows, n_cols = len(strips), len(strips[0])
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(0.6 * n_cols + 1.2, 0.75 * n_rows + 0.6), squeeze=False
    )
    for ax, strip, label in zip(axes[:, 0], strips, labels, strict=True):
        _show_grid(ax, strip, n_cols)
        ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    axes[0, 0].set_title(title, fontsize=10)
    return _save(fig, path)


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
    return _save(fig, path)


def confidence_curves(path: str | Path, curves: dict[str, np.ndarray], title: str) -> Path:
    """Classifier confidence (max softmax) along paths; curves: name -> (pairs, T) array."""
    return path_curves(path, curves, title, "classifier confidence", ylim=(0, 1.02))


def latent_map(
    path: str | Path,
    xy: np.ndarray,
    labels: np.ndarray,
    title: str,
) -> Path:
    """Codes projected to 2-D (N, 2) as a scatter coloured by digit label."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    return _save(fig, path)


def traversals(
    path: str | Path,
    rows: Sequence[torch.Tensor],
    dims: Sequence[int],
    values: np.ndarray,
    title: str,
) -> Path:
    n_cols = len(rows[0])
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(0.6 * n_cols + 1.2, 0.7 * len(rows) + 0.8), squeeze=False
    )
    for ax, row, d in zip(axes[:, 0], rows, dims, strict=True):
        _show_grid(ax, row, n_cols)
        ax.set_ylabel(f"z[{d}]", fontsize=8, rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("value: " + "  ".join(f"{v:+.1f}" for v in values), fontsize=7)
    axes[0, 0].set_title(title, fontsize=10)
    return _save(fig, path)


def bars(
    path: str | Path,
    values: np.ndarray,
    title: str,
    ylabel: str,
    xlabel: str = "latent dimension (sorted)",
    threshold: float | None = None,
) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.bar(np.arange(len(values)), values, width=0.85)
    if threshold is not None:
        ax.axhline(threshold, color="red", lw=0.8, ls="--", label=f"threshold {threshold:g}")
        ax.legend(fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return _save(fig, path)


def _log_axis(ax: plt.Axes, x: Sequence[float]) -> None:
    """Log x axis; symlog (linear near 0) only when some value is not positive."""
    positive = [v for v in x if v > 0]
    if len(positive) == len(x):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)


def xy_lines(
    path: str | Path,
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = True,
    logy: bool = False,
    hline: tuple[float, str] | None = None,
    mark: float | None = None,
    hlines: Sequence[tuple[float, str]] = (),
) -> Path:
    """Metric(s) against a parameter (e.g. β), optional reference line(s) and marked choice."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for name, ys in series.items():
        ax.plot(x, ys, "o-", ms=4, label=name)
    refs = ([hline] if hline is not None else []) + list(hlines)
    for (value, label), style in zip(refs, ("--", ":", "-."), strict=False):
        ax.axhline(value, color="gray", lw=0.8, ls=style, label=label)
    if mark is not None:
        ax.axvline(mark, color="red", lw=0.8, ls=":", label=f"chosen {mark:g}")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        _log_axis(ax, x)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _save(fig, path)


def scatter_labelled(
    path: str | Path,
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[str],
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """Points with text labels (e.g. a rate–distortion plane annotated with β)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.plot(x, y, "o-", ms=4)
    for xi, yi, s in zip(x, y, labels, strict=True):
        ax.annotate(s, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    _log_axis(ax, x)
    ax.set_yscale("log")
    return _save(fig, path)


@dataclass
class RateDistortion:
    """Points (rate, distortion) labelled by β, the chosen point, the AE's distortion, and the
    final run of the chosen β (trained longer than the trials) if there is one."""

    rate: Sequence[float]
    distortion: Sequence[float]
    labels: Sequence[str]
    chosen: tuple[float, float]
    chosen_beta: float
    ae_distortion: float | None = None
    tuned: tuple[float, float] | None = None


def _spans_decade(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(values) > 10 * min(positive)


def _rate_distortion(ax: plt.Axes, rd: RateDistortion) -> None:
    ax.plot(rd.rate, rd.distortion, "o-", ms=4, color="tab:blue", label="VAE, one point per β")
    for xi, yi, label in zip(rd.rate, rd.distortion, rd.labels, strict=True):
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    cx, cy = rd.chosen
    ax.plot([cx], [cy], "*", ms=14, color="red", label=f"chosen β = {rd.chosen_beta:g}")
    if rd.tuned is not None:
        ax.plot([rd.tuned[0]], [rd.tuned[1]], "D", ms=7, color="darkred", label="tuned run")
    if rd.ae_distortion is not None:
        ax.axhline(rd.ae_distortion, color="gray", lw=0.8, ls="--", label="AE (no rate term)")
    # Log axes only where the values span a decade: on a narrower range matplotlib labels
    # every minor tick and the labels overlap.
    rate = [*rd.rate, *([rd.tuned[0]] if rd.tuned else [])]
    distortion = [*rd.distortion, *([rd.tuned[1]] if rd.tuned else [])]
    if _spans_decade(rate):
        _log_axis(ax, rate)
    if _spans_decade(distortion):
        ax.set_yscale("log")
        # plain labels at 1-2-5 steps: the default minor labels ("6×10¹") are wider than the
        # room left of the axis and ran into the y label
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set(xlabel="rate: KL per image (nats)", ylabel="distortion: SSE / image")
    ax.set_title("Rate–distortion across β", fontsize=10)
    ax.legend(fontsize=7)


def summary_panel(
    path: str | Path,
    samples: Sequence[tuple[str, torch.Tensor]],
    strips: Sequence[tuple[str, Sequence[tuple[str, torch.Tensor]]]],
    rd: RateDistortion,
    title: str,
) -> Path:
    """The report's first figure: prior samples of three models side by side (top), decoded
    interpolation paths of two models and the rate–distortion curve (bottom).

    samples: (title, images (n, C, H, W)) per model, shown 8 per row;
    strips: (title, [(row label, path images (T, C, H, W)), ...]) per model."""
    fig = plt.figure(figsize=(13, 5.4))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 1.0], hspace=0.3, wspace=0.24)
    for i, (name, images) in enumerate(samples):
        ax = fig.add_subplot(grid[0, i])
        _show_grid(ax, images, 8)
        ax.set_title(name, fontsize=10)
    for i, (name, rows) in enumerate(strips):
        sub = grid[1, i].subgridspec(len(rows), 1, hspace=0.06)
        for r, (label, images) in enumerate(rows):
            ax = fig.add_subplot(sub[r])
            _show_grid(ax, images, len(images))
            ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
            if r == 0:
                ax.set_title(name, fontsize=10)
    _rate_distortion(fig.add_subplot(grid[1, 2]), rd)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)
