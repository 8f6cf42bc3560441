"""What the figures of `vaelab evaluate` show, computed from an EvalContext, stored once in
RUN_DIR/eval_arrays.npz and drawn from there (vaelab.report.run_figures)."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.evaluate.arrays import EvalArrays
from vaelab.evaluate.context import PATH_MODES, EvalContext
from vaelab.evaluate.metrics import path_confidence, path_realism
from vaelab.report.run_figures import draw_run_figures

TRAVERSAL_VALUES = np.linspace(-3, 3, 9)
"""Offsets of the traversal columns, in standard deviations of μ."""


def write_figures(ctx: EvalContext) -> None:
    """Store the evaluation's arrays, then draw the run's figures from them."""
    arrays = eval_arrays(ctx)
    arrays.save(ctx.run_dir)
    draw_run_figures(ctx.run_dir, arrays)


def _numpy(images: torch.Tensor) -> np.ndarray:
    return images.detach().float().cpu().numpy()


def eval_arrays(ctx: EvalContext) -> EvalArrays:
    """Reconstructions, prior samples, interpolation paths with their curves, and the latent
    space (see EvalArrays)."""
    x, n_show, modes = ctx.data.x, min(16, len(ctx.data.x)), ("lerp", "slerp")
    # unlabelled data has no paths (they are chosen by label): empty arrays of the usual shapes
    has_paths, t = bool(ctx.paths["lerp"]), ctx.ecfg.steps
    mu, q = ctx.codes
    centred = mu.double().cpu() - mu.double().cpu().mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    var = mu.double().var(0).cpu()
    kl = None if q is None else q.kl_per_dim().double().mean(0).cpu()
    order = torch.argsort(var if kl is None else kl, descending=True)
    return EvalArrays(
        kind=ctx.kind,
        split=ctx.split,
        steps=ctx.ecfg.steps,
        inputs=_numpy(x[:n_show]),
        recon=_numpy(ctx.recon[:n_show]),
        samples=_numpy(ctx.samples[:64]),
        path_pairs=np.array([p.pair for p in ctx.paths["lerp"]]).reshape(-1, 2),
        paths={
            m: np.stack([_numpy(p.images) for p in ctx.paths[m]])
            if has_paths
            else np.zeros((0, t + 2, *x.shape[1:]))
            for m in modes
        },
        confidence={
            m: path_confidence(ctx, m) if has_paths else np.zeros((0, t + 2)) for m in modes
        },
        realism={m: path_realism(ctx, m) if has_paths else np.zeros((0, t)) for m in PATH_MODES},
        codes_2d=(centred @ v[:2].T).numpy(),
        labels=ctx.data.y.cpu().numpy(),
        explained=(s[:2] ** 2 / (s**2).sum()).numpy(),
        activity=var[order].numpy(),
        kl_per_dim=None if kl is None else kl[order].numpy(),
        dims=order.numpy(),
        traversal_values=TRAVERSAL_VALUES,
        traversals=_traversals(ctx, order[:6].tolist(), var),
    )


@torch.no_grad()
def _traversals(ctx: EvalContext, dims: list[int], var: torch.Tensor) -> np.ndarray:
    """(dims, values, C, H, W): the mean code moved along each dim by k standard deviations."""
    base = ctx.codes[0].mean(0)
    rows = []
    for d in dims:
        z = base.repeat(len(TRAVERSAL_VALUES), 1)
        z[:, d] = base[d] + torch.as_tensor(TRAVERSAL_VALUES).to(z) * var[d].sqrt().to(z)
        rows.append(_numpy(torch.sigmoid(ctx.model.decode(z))))
    return np.stack(rows)
