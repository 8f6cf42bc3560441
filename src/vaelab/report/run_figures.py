"""The figures of one evaluated run (RUN_DIR/figures/*.png), drawn from what its evaluation
stored (vaelab.evaluate.arrays) and from its metrics.jsonl: no model, no decoding."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vaelab.evaluate.arrays import EvalArrays
from vaelab.report import figures
from vaelab.train.runlog import read_metrics

PATH_NAMES = {"lerp": "lerp", "slerp": "slerp", "pixel": "pixel cross-fade (baseline)"}


def pair_paths(a: EvalArrays, pair: tuple[int, int], mode: str) -> list[np.ndarray]:
    """The decoded `mode` paths of one label pair, in order."""
    return [p for p, ends in zip(a.paths[mode], a.path_pairs, strict=True) if tuple(ends) == pair]


@figures.closed_on_error
def draw_run_figures(run_dir: Path, a: EvalArrays) -> None:
    """Reconstructions, samples, training curves, interpolations and the latent space."""
    fig_dir, kind = run_dir / "figures", a.kind
    figures.image_rows(
        fig_dir / "reconstructions.png",
        [("input", a.inputs), ("output", a.recon)],
        f"{kind}: first {len(a.inputs)} {a.split} images (top) and reconstructions from μ (bottom)",
    )
    figures.image_grid(
        fig_dir / "samples.png", a.samples, f"{kind}: 64 samples decoded from z ~ N(0, I)"
    )
    records = read_metrics(run_dir / "metrics.jsonl")
    if records:
        _training_curves(fig_dir / "curves.png", records, f"{kind}: training curves")
    if len(a.path_pairs):  # unlabelled data has no label pairs to join
        _interpolation_figures(fig_dir, a)
    _latent_figures(fig_dir, a)


def _interpolation_figures(fig_dir: Path, a: EvalArrays) -> None:
    kind = a.kind
    for pair in dict.fromkeys((int(p[0]), int(p[1])) for p in a.path_pairs):
        rows = [
            (f"{pair[0]}→{pair[1]} #{j + 1} {mode}", path)
            for mode in ("lerp", "slerp")
            for j, path in enumerate(pair_paths(a, pair, mode))
        ]
        figures.image_rows(
            fig_dir / f"interp_{pair[0]}to{pair[1]}.png",
            rows,
            f"{kind}: interpolation {pair[0]}→{pair[1]} (start, {a.steps} decoded codes, end)",
        )
    figures.path_curves(
        fig_dir / "interp_confidence.png",
        a.confidence,
        f"{kind}: classifier confidence along paths (mean, min–max)",
        "classifier confidence",
        ylim=(0, 1.02),
    )
    figures.path_curves(
        fig_dir / "interp_realism.png",
        {PATH_NAMES[mode]: curves for mode, curves in a.realism.items()},
        f"{kind}: realism along paths (nearest-real distance ratio; lower = more real)",
        "distance to nearest real / real-to-real median",
        t=np.arange(1, a.steps + 1) / (a.steps + 1),
        hline=(1.0, "held-out real images ≈ 1"),
    )


def _latent_figures(fig_dir: Path, a: EvalArrays) -> None:
    """PCA map of the codes, per-dimension activity (and KL), traversals of the top dims."""
    kind = a.kind
    # the codes projected to 2-D as a scatter coloured by digit label
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    xy = a.codes_2d
    sc = ax.scatter(
        xy[:, 0], xy[:, 1], c=a.labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5
    )
    fig.colorbar(sc, ax=ax, ticks=range(10), label="label")
    title = f"{kind}: test codes μ, PCA ({a.explained[0]:.0%} + {a.explained[1]:.0%} of variance)"
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    figures.save(fig, fig_dir / "latent_map.png")
    for name, values, title, ylabel, threshold in (
        ("kl_per_dim", a.kl_per_dim, "KL per latent dimension", "KL (nats per image)", None),
        (
            "activity",
            a.activity,
            "Cov_x(E[z_u|x]) per dimension (active if > 0.01)",
            "variance of μ over test images",
            1e-2,
        ),
    ):
        if values is None:
            continue  # an AE has no KL
        # one bar per latent dimension (sorted), an optional threshold line
        fig, ax = plt.subplots(figsize=(6.5, 3.0))
        ax.bar(np.arange(len(values)), values, width=0.85)
        if threshold is not None:
            ax.axhline(threshold, color="red", lw=0.8, ls="--", label=f"threshold {threshold:g}")
            ax.legend(fontsize=8)
        ax.set(xlabel="latent dimension (sorted)", ylabel=ylabel, title=f"{kind}: {title}")
        figures.save(fig, fig_dir / f"{name}.png")
    which = "informative (KL)" if a.kl_per_dim is not None else "variable"
    figures.image_rows(
        fig_dir / "traversals.png",
        [(f"z[{d}]", row) for d, row in zip(a.dims, a.traversals, strict=False)],
        f"{kind}: the 6 most {which} dims, mean code ± k·std",
        xlabel="value: " + "  ".join(f"{v:+.1f}" for v in a.traversal_values),
    )


def _training_curves(path: str | Path, records: list[dict], title: str) -> Path:
    """Per-iteration reconstruction and KL (log scale), with validation per epoch."""
    train = [r for r in records if "train/recon" in r]
    val = [r for r in records if "val/recon" in r]
    parts = [("recon", "reconstruction", "reconstruction (nats / SSE per image)")]
    if any(r.get("train/kl", 0) > 0 for r in train):
        parts.append(("kl", "KL", "KL (nats per image)"))
    fig, axes = plt.subplots(1, len(parts), figsize=(4.5 * len(parts) + 1, 3.4), squeeze=False)
    for ax, (key, name, ylabel) in zip(axes[0], parts, strict=True):
        for split, rs, style, label in (
            ("train", train, "-", "train (per logged step)"),
            ("val", val, "o-", "validation (per epoch)"),
        ):
            ys = [max(r[f"{split}/{key}"], 1e-8) for r in rs]
            ax.plot([r["step"] for r in rs], ys, style, ms=3, lw=0.8, label=label)
        ax.set(xlabel="iteration", ylabel=ylabel, yscale="log", title=name)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figures.save(fig, path)
