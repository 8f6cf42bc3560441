"""The figures of one evaluated run (RUN_DIR/figures/*.png), drawn from what its evaluation
stored (vaelab.evaluate.arrays) and from its metrics.jsonl: no model, no decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.evaluate.arrays import EvalArrays
from vaelab.report import figures
from vaelab.train.runlog import read_metrics

PATH_NAMES = {"lerp": "lerp", "slerp": "slerp", "pixel": "pixel cross-fade (baseline)"}


def pair_paths(a: EvalArrays, pair: tuple[int, int], mode: str) -> list[np.ndarray]:
    """The decoded `mode` paths of one label pair, in order."""
    return [p for p, ends in zip(a.paths[mode], a.path_pairs, strict=True) if tuple(ends) == pair]


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
        figures.training_curves(fig_dir / "curves.png", records, f"{kind}: training curves")
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
    figures.latent_map(
        fig_dir / "latent_map.png",
        a.codes_2d,
        a.labels,
        f"{kind}: test codes μ, PCA ({a.explained[0]:.0%} + {a.explained[1]:.0%} of variance)",
    )
    if a.kl_per_dim is not None:
        figures.bars(
            fig_dir / "kl_per_dim.png",
            a.kl_per_dim,
            f"{kind}: KL per latent dimension",
            "KL (nats per image)",
        )
    figures.bars(
        fig_dir / "activity.png",
        a.activity,
        f"{kind}: Cov_x(E[z_u|x]) per dimension (active if > 0.01)",
        "variance of μ over test images",
        threshold=1e-2,
    )
    which = "informative (KL)" if a.kl_per_dim is not None else "variable"
    figures.image_rows(
        fig_dir / "traversals.png",
        [(f"z[{d}]", row) for d, row in zip(a.dims, a.traversals, strict=False)],
        f"{kind}: the 6 most {which} dims, mean code ± k·std",
        xlabel="value: " + "  ".join(f"{v:+.1f}" for v in a.traversal_values),
    )
