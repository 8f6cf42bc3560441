"""`vaelab evaluate`: every number and figure the study uses, for one trained run.

Writes `RUN_DIR/eval.json` (flat namespaced keys, plain numbers; units in the README), the arrays
the figures are drawn from (`eval_arrays.npz`, vaelab.evaluate.arrays) and `figures/*.png`. Metric
groups (vaelab.evaluate.metrics) can be requested separately, e.g. a cheap β-selection evaluation:
`evaluate_run(run_dir, EvalConfig(groups=SELECTION_GROUPS, figures=False, n_samples=2000))`.
AE runs skip what needs a posterior (ELBO, KL, active units, IW-NLL); their prior samples are
decoded from N(0, I) as in the study.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import GROUPS, EvalConfig
from vaelab.errors import RunError
from vaelab.evaluate.arrays import EvalArrays
from vaelab.evaluate.context import PATH_MODES, EvalContext, eval_data_for
from vaelab.evaluate.keys import Group, to_keys
from vaelab.evaluate.metrics import (
    interpolation_metrics,
    likelihood_metrics,
    path_confidence,
    path_realism,
    probe_metrics,
    reconstruction_metrics,
    sample_quality_metrics,
)
from vaelab.fsutil import atomic_write_json
from vaelab.report.run_figures import draw_run_figures
from vaelab.runtime import resolve_device, stream_seed
from vaelab.train.checkpoint import load_model

METRIC_GROUPS: dict[str, Callable[[EvalContext], Group | None]] = {
    "reconstruction": reconstruction_metrics,
    "likelihood": likelihood_metrics,
    "samples": sample_quality_metrics,
    "probes": probe_metrics,
    "interpolation": interpolation_metrics,
}
TRAVERSAL_VALUES = np.linspace(-3, 3, 9)
"""Offsets of the traversal columns, in standard deviations of μ."""

# Groups that cannot run without labels, and why (unlabelled data: eval.json's `skipped/<group>`).
NEED_LABELS = {
    "probes": "probes predict labels from codes",
    "interpolation": "paths join images of two chosen labels and are scored by class confidence",
}


def evaluate_run(
    run_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    **kw: Any,
) -> dict[str, float]:
    """Evaluate `run_dir` (see the module docstring); returns the eval.json contents. Progress
    lines go to `log` (default: stderr) and to RUN_DIR/eval.log."""
    ecfg = (ecfg or EvalConfig(**kw)).validate()
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / f"{ecfg.checkpoint}.pt").is_file():
        raise RunError(
            f"{run_dir} has no checkpoints/{ecfg.checkpoint}.pt; train it first "
            "(vaelab train --out RUN_DIR)"
        )
    echo = log or (lambda m: print(m, file=sys.stderr))
    with open(run_dir / "eval.log", "a") as log_file:

        def say(msg: str) -> None:
            echo(msg)
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
            log_file.flush()

        return _evaluate(run_dir, ecfg, say)


def _evaluate(run_dir: Path, ecfg: EvalConfig, say: Callable[[str], None]) -> dict[str, float]:
    t_start = time.perf_counter()
    device = resolve_device(ecfg.device)
    model, cfg = load_model(run_dir, ecfg.checkpoint, device)
    # channels_last: measured +20-50 % decoder throughput for no-grad passes on CPU.
    model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(stream_seed(ecfg.seed, "eval_global"))
    data = eval_data_for(cfg, ecfg.split, limit=ecfg.limit, seed=ecfg.seed, device=device)
    ctx = EvalContext(run_dir, model, cfg, ecfg, data, device, say)
    m: dict[str, float] = {"eval/n_images": len(data.x), "eval/seed": ecfg.seed}
    for name in GROUPS:  # in a fixed order, whatever order the caller listed them in
        m[f"eval/group/{name}"] = float(name in ecfg.groups)
        if name in ecfg.groups and name in NEED_LABELS and not ctx.labelled:
            m[f"skipped/{name}"] = 1.0
            say(f"{run_dir.name}: skipped {name}: {NEED_LABELS[name]}, and these images have none")
        elif name in ecfg.groups:
            m |= to_keys(METRIC_GROUPS[name](ctx), ecfg.split)
    m["eval/figures"] = float(ecfg.figures)
    if ecfg.figures:
        arrays = eval_arrays(ctx)
        arrays.save(run_dir)
        draw_run_figures(run_dir, arrays)
    m["eval/time_s"] = time.perf_counter() - t_start
    atomic_write_json(run_dir / "eval.json", m)
    say(f"{run_dir.name}: wrote eval.json in {m['eval/time_s']:.1f} s")
    return m


def _numpy(images: torch.Tensor) -> np.ndarray:
    return images.detach().float().cpu().numpy()


def eval_arrays(ctx: EvalContext) -> EvalArrays:
    """Reconstructions, prior samples, interpolation paths with their curves, and the latent
    space (see EvalArrays)."""
    x, modes = ctx.data.x, ("lerp", "slerp")
    # unlabelled data has no paths (they are chosen by label): empty arrays of the usual shapes
    has_paths, t = bool(ctx.paths["lerp"]), ctx.ecfg.steps
    mu, q = ctx.codes
    centred = mu.double().cpu() - mu.double().cpu().mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    var = mu.double().var(0).cpu()
    kl = None if q is None else q.kl_per_dim().double().mean(0).cpu()
    order = torch.argsort(var if kl is None else kl, descending=True)
    return EvalArrays(
        kind=f"VAE β={ctx.cfg.beta:g}" if ctx.model.is_vae else "AE",
        split=ctx.ecfg.split,
        steps=ctx.ecfg.steps,
        inputs=_numpy(x[:16]),
        recon=_numpy(ctx.recon[:16]),
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
