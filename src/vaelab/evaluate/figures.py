"""The figures of `vaelab evaluate` (RUN_DIR/figures/*.png), drawn from an EvalContext."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.evaluate.context import EvalContext
from vaelab.evaluate.metrics import path_confidence, path_realism
from vaelab.report import figures
from vaelab.train.runlog import read_metrics


def write_figures(ctx: EvalContext) -> None:
    """Reconstructions, samples, training curves, interpolations and the latent space."""
    fig_dir, kind, x = ctx.run_dir / "figures", ctx.kind, ctx.data.x
    n_show = min(16, len(x))
    figures.reconstructions(
        fig_dir / "reconstructions.png",
        x[:n_show],
        ctx.recon[:n_show],
        f"{kind}: first {n_show} {ctx.split} images (top) and reconstructions from μ (bottom)",
    )
    figures.image_grid(
        fig_dir / "samples.png", ctx.samples[:64], f"{kind}: 64 samples decoded from z ~ N(0, I)"
    )
    records = read_metrics(ctx.run_dir / "metrics.jsonl")
    if records:
        figures.training_curves(fig_dir / "curves.png", records, f"{kind}: training curves")
    _interpolation_figures(ctx)
    _latent_figures(ctx)


def _interpolation_figures(ctx: EvalContext) -> None:
    fig_dir, kind, e = ctx.run_dir / "figures", ctx.kind, ctx.ecfg
    for a, b in e.pairs:
        rows = [
            (f"{a}→{b} #{p.index + 1} {mode}", p.images)
            for mode in ("lerp", "slerp")
            for p in ctx.paths[mode]
            if p.pair == (a, b)
        ]
        figures.interpolation_strips(
            fig_dir / f"interp_{a}to{b}.png",
            [r[1] for r in rows],
            [r[0] for r in rows],
            f"{kind}: interpolation {a}→{b} (start, {e.steps} decoded codes, end)",
        )
    figures.confidence_curves(
        fig_dir / "interp_confidence.png",
        {mode: path_confidence(ctx, mode) for mode in ("lerp", "slerp")},
        f"{kind}: classifier confidence along paths (mean, min–max)",
    )
    names = {"lerp": "lerp", "slerp": "slerp", "pixel": "pixel cross-fade (baseline)"}
    figures.path_curves(
        fig_dir / "interp_realism.png",
        {names[mode]: path_realism(ctx, mode) for mode in names},
        f"{kind}: realism along paths (nearest-real distance ratio; lower = more real)",
        "distance to nearest real / real-to-real median",
        t=np.arange(1, e.steps + 1) / (e.steps + 1),
        hline=(1.0, "held-out real images ≈ 1"),
    )


def _latent_figures(ctx: EvalContext) -> None:
    """PCA map of the codes, per-dimension activity (and KL), traversals of the top dims."""
    fig_dir, kind, y = ctx.run_dir / "figures", ctx.kind, ctx.data.y
    mu, q = ctx.codes
    mu_c = mu.double().cpu()
    mu_c = mu_c - mu_c.mean(0)
    _, s, v = torch.linalg.svd(mu_c, full_matrices=False)
    xy = (mu_c @ v[:2].T).numpy()
    explained = (s[:2] ** 2 / (s**2).sum()).tolist()
    figures.latent_map(
        fig_dir / "latent_map.png",
        xy,
        y.cpu().numpy(),
        f"{kind}: test codes μ, PCA ({explained[0]:.0%} + {explained[1]:.0%} of variance)",
    )
    var = mu.double().var(0).cpu()
    if q is not None:
        score = q.kl_per_dim().double().mean(0).cpu()
        order = torch.argsort(score, descending=True)
        figures.bars(
            fig_dir / "kl_per_dim.png",
            score[order].numpy(),
            f"{kind}: KL per latent dimension",
            "KL (nats per image)",
        )
    else:
        order = torch.argsort(var, descending=True)
    figures.bars(
        fig_dir / "activity.png",
        var[order].numpy(),
        f"{kind}: Cov_x(E[z_u|x]) per dimension (active if > 0.01)",
        "variance of μ over test images",
        threshold=1e-2,
    )
    dims = order[:6].tolist()
    base = mu.mean(0)
    values = np.linspace(-3, 3, 9)
    which = "informative (KL)" if q is not None else "variable"
    rows = []
    with torch.no_grad():
        for d in dims:
            z = base.repeat(len(values), 1)
            z[:, d] = base[d] + torch.as_tensor(values, dtype=z.dtype) * var[d].sqrt().to(z)
            rows.append(torch.sigmoid(ctx.model.decode(z)))
    figures.traversals(
        fig_dir / "traversals.png",
        rows,
        dims,
        values,
        f"{kind}: the 6 most {which} dims, mean code ± k·std",
    )
