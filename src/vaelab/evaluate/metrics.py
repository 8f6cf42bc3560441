"""`vaelab evaluate`: every number and figure the study uses, for one trained run.

Writes `RUN_DIR/eval.json` (flat namespaced keys, plain numbers; units in the README), the arrays
the figures are drawn from (`eval_arrays.npz`, vaelab.evaluate.arrays) and `figures/*.png`. Each
metric group is a function of an EvalContext returning its dataclass of vaelab.evaluate.keys, and
can be requested separately, e.g. a cheap β-selection evaluation:
`evaluate_run(run_dir, EvalConfig(groups=SELECTION_GROUPS, figures=False, n_samples=2000))`.
AE runs skip what needs a posterior (ELBO, KL, active units, IW-NLL); their prior samples are
decoded from N(0, I) as in the study.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import GROUPS, EvalConfig
from vaelab.data.store import UNLABELLED
from vaelab.errors import DataError, RunError
from vaelab.evaluate import memo
from vaelab.evaluate.arrays import EvalArrays
from vaelab.evaluate.context import EvalContext, eval_data_for
from vaelab.evaluate.estimators import active_units, elbo, iw_log_likelihood
from vaelab.evaluate.features import knn_accuracy, linear_probe_accuracy, realism_ratio
from vaelab.evaluate.interpolation import path_smoothness
from vaelab.evaluate.keys import (
    Group,
    Likelihood,
    PathMeasures,
    Probes,
    Reconstruction,
    SampleQuality,
    to_keys,
)
from vaelab.fsutil import atomic_write_json
from vaelab.losses import bce, neg_log_likelihood, sse
from vaelab.models import batched, is_vae
from vaelab.report.run_figures import draw_run_figures
from vaelab.runtime import resolve_device, stream_seed
from vaelab.train.checkpoint import load_model

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


def reconstruction_metrics(ctx: EvalContext) -> Reconstruction:
    x, logits = ctx.data.x, ctx.recon_logits
    per_image = sse(logits, x).double()
    sse_ = float(per_image.mean())
    mu, q = ctx.codes
    kl_dim = None if q is None else q.kl_per_dim().double().mean(0)
    feats, probs = ctx.classify(ctx.recon)
    fd, precision, recall = ctx.against_real(feats)
    # Realism of decodes of real codes, each matched against the real images except its own
    # original: the level the same model's interpolations can be read against.
    own = np.arange(len(feats))[:, None]
    realism = realism_ratio(feats, ctx.real[0], ctx.real_nn_scale, exclude=own)
    m = Reconstruction(
        sse=sse_,
        sse_se=standard_error(per_image),
        mse=sse_ / x[0].numel(),
        bce=float(bce(logits, x).double().mean()),
        # The rate of the same codes whose decodes give the SSE: KL(q(z|x) ‖ N(0, I)) per image.
        kl=None if kl_dim is None else float(kl_dim.sum()),
        kl_dim=None if kl_dim is None else kl_dim.tolist(),
        active_units=None if q is None else active_units(mu)[0],
        classifier_accuracy=ctx.classifier[1]["test_accuracy"],
        accuracy=float((probs.argmax(1) == ctx.data.y.cpu().numpy()).mean())
        if ctx.labelled
        else None,
        fd=fd,
        precision=precision,
        recall=recall,
        realism_median=float(np.median(realism)),
        realism_p90=float(np.quantile(realism, 0.9)),
    )
    read = f", classifier accuracy {m.accuracy:.3f}" if m.accuracy is not None else ""
    ctx.say(f"{ctx.run_dir.name}: reconstruction SSE {m.sse:.3f} per image{read}")
    return m


def likelihood_metrics(ctx: EvalContext) -> Likelihood | None:
    """ELBO and IW-NLL of the likelihood copy of the images (VAE only: None for an AE)."""
    model, cfg, e = ctx.model, ctx.cfg, ctx.ecfg
    if not is_vae(model):
        return None
    # ~1000 decoder passes per forward: larger batches measured slower on CPU (the allocator
    # maps and faults in 100+ MB activation buffers on every forward).
    x_lik, k, chunk = ctx.data.x_lik, e.iw_samples, min(e.iw_samples, 1000)
    g = torch.Generator(device=ctx.device).manual_seed(stream_seed(e.seed, "eval_likelihood"))

    def log_lik(xb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -neg_log_likelihood(model.decode(z), xb, cfg.likelihood, cfg.sigma2)

    iw = partial(iw_log_likelihood, model.posterior, log_lik, k=k, chunk=chunk, generator=g)
    parts = batched(partial(elbo, model.posterior, log_lik, generator=g), x_lik, 500)
    el = torch.cat([p[0] for p in parts])
    x_iw = x_lik[: e.iw_limit]
    t0 = time.perf_counter()
    ctx.say(f"{ctx.run_dir.name}: IW-NLL with K={k} on {len(x_iw)} images")
    lp = torch.cat(batched(iw, x_iw, max(1, 1000 // chunk)))
    iw_nll = float(-lp.mean())
    # The standard errors over images say how many images a precision needs: the IW-NLL's
    # shrinks as 1/sqrt(--iw-limit), while its bias shrinks with K (--iw-samples).
    return Likelihood(
        elbo=float(el.mean()),
        elbo_se=standard_error(el),
        iw_nll=iw_nll,
        iw_nll_se=standard_error(lp),
        iw_bits_per_dim=iw_nll / (x_lik[0].numel() * math.log(2))
        + (8.0 if cfg.likelihood == "gaussian" else 0.0),  # dequantised 8-bit data: see README
        iw_k=k,
        iw_n_images=len(x_iw),
        iw_time_s=time.perf_counter() - t0,
        neg_elbo_same_images=float(-el[: len(x_iw)].mean()),
    )


def sample_quality_metrics(ctx: EvalContext) -> SampleQuality:
    """Prior samples against the real images, in the reference classifier's features, with the
    same measures between real train and real images as the floor."""
    real_feats, real_probs = ctx.real
    feats, probs = ctx.classify(ctx.samples)
    fd, precision, recall = ctx.against_real(feats)
    floor_feats, n, k = ctx.floor[0], ctx.pr_size, ctx.ecfg.pr_k
    # real train against real images: the same for every model, memoised by content
    floor_fd, floor_precision, floor_recall = memo.memoised(
        "floor",
        (floor_feats, real_feats, n, k, ctx.real_radii),
        lambda: ctx.against_real(floor_feats),
    )
    hist = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
    nz_hist = hist[hist > 0]
    labelled = ctx.labelled  # without labels the last layer predicts pixels, not classes
    m = SampleQuality(
        classifier_accuracy=ctx.classifier[1]["test_accuracy"],
        fd=fd,
        floor_fd=floor_fd,
        precision=precision,
        recall=recall,
        floor_precision=floor_precision,
        floor_recall=floor_recall,
        pr_n=n,
        pr_k=k,
        class_entropy=float(-(nz_hist * np.log(nz_hist)).sum()) + 0.0 if labelled else None,
        confidence=float(probs.max(1).mean()) if labelled else None,
        real_confidence=float(real_probs.max(1).mean()) if labelled else None,
        class_frac=hist.tolist() if labelled else None,
    )
    classes = f", class entropy {m.class_entropy:.3f}" if labelled else " (label-free features)"
    ctx.say(
        f"{ctx.run_dir.name}: sample FD {m.fd:.2f} (floor {m.floor_fd:.2f}), precision "
        f"{m.precision:.3f}, recall {m.recall:.3f}{classes}"
    )
    return m


def probe_metrics(ctx: EvalContext) -> Probes:
    """How well labels can be read from the codes: probes fit on train codes, scored on μ."""
    x_tr8, y_tr = ctx.train_images
    if (y_tr == UNLABELLED).any():
        raise DataError(
            f"{ctx.cfg.data_dir} has no labels (a flat folder): probes need class sub-folders"
        )
    limit = ctx.ecfg.probe_train
    x_ptr = torch.from_numpy(x_tr8[:limit]).to(ctx.device).float() / 255.0
    z_tr = torch.cat(batched(ctx.model.encode, x_ptr)).cpu()
    y_tr_t = torch.from_numpy(y_tr[:limit])
    mu, y = ctx.codes[0].cpu(), ctx.data.y.cpu()
    m = Probes(
        linear_acc=linear_probe_accuracy(z_tr, y_tr_t, mu, y),
        knn_acc=knn_accuracy(z_tr, y_tr_t, mu, y, k=5),
        n_train=len(z_tr),
    )
    ctx.say(f"{ctx.run_dir.name}: linear probe {m.linear_acc:.4f}, 5-NN {m.knn_acc:.4f}")
    return m


def interpolation_metrics(ctx: EvalContext) -> dict[str, PathMeasures]:
    """Per mode (lerp, slerp; `pixel` = the cross-fade baseline): confidence, realism and, for
    decoded paths, smoothness. Interior points only: the ends are the real images."""
    m = {}
    for mode, paths in ctx.paths[1].items():
        conf, real = ctx.path_scores[mode]
        conf = conf[:, 1:-1]
        # a straight pixel fade: its smoothness is 1 and 1/(steps + 1) by construction
        smooth = [path_smoothness(p) for p in paths] if mode != "pixel" else []
        m[mode] = PathMeasures(
            mean_conf=float(conf.mean()),
            min_conf=float(conf.min(1).mean()),
            realism_median=float(np.median(real)),
            realism_p90=float(np.quantile(real, 0.9)),
            realism_worst=float(real.max(1).mean()),
            realism_step=[float(v) for v in np.median(real, 0)],
            path_length_ratio=_mean(smooth, "path_length_ratio"),
            max_step_fraction=_mean(smooth, "max_step_fraction"),
        )
    ctx.say(
        f"{ctx.run_dir.name}: lerp realism median {m['lerp'].realism_median:.2f} "
        f"(pixel cross-fade {m['pixel'].realism_median:.2f}), lowest confidence "
        f"{m['lerp'].min_conf:.3f}"
    )
    return m


METRIC_GROUPS: dict[str, Callable[[EvalContext], Group | None]] = {
    "reconstruction": reconstruction_metrics,
    "likelihood": likelihood_metrics,
    "samples": sample_quality_metrics,
    "probes": probe_metrics,
    "interpolation": interpolation_metrics,
}


def standard_error(per_image: torch.Tensor) -> float:
    """The standard error of the mean of per-image values (N,): their sample SD / sqrt(N)."""
    if len(per_image) < 2:
        return 0.0
    return float(per_image.double().std() / math.sqrt(len(per_image)))


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    return float(np.mean([r[key] for r in rows])) if rows else None


def _numpy(images: torch.Tensor) -> np.ndarray:
    return images.detach().float().cpu().numpy()


def eval_arrays(ctx: EvalContext) -> EvalArrays:
    """What the run's figures are drawn from (see EvalArrays)."""
    x, t, modes = ctx.data.x, ctx.ecfg.steps, ("lerp", "slerp")
    (ends, paths), labels = ctx.paths, ctx.data.y.cpu().numpy()
    mu, q = ctx.codes
    centred = mu.double().cpu() - mu.double().cpu().mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    var = mu.double().var(0).cpu()
    kl = None if q is None else q.kl_per_dim().double().mean(0).cpu()
    order = torch.argsort(var if kl is None else kl, descending=True)
    return EvalArrays(
        kind=f"VAE β={ctx.cfg.beta:g}" if ctx.model.is_vae else "AE",
        split=ctx.ecfg.split,
        steps=t,
        inputs=_numpy(x[:16]),
        recon=_numpy(ctx.recon[:16]),
        samples=_numpy(ctx.samples[:64]),
        path_pairs=labels[ends],
        # unlabelled data has no paths (they are chosen by label): empty arrays of the usual shapes
        paths={
            m: np.array([_numpy(p) for p in paths[m]]).reshape(-1, t + 2, *x.shape[1:])
            for m in modes
        },
        confidence={m: ctx.path_scores[m][0] for m in modes},
        realism={m: scores[1] for m, scores in ctx.path_scores.items()},
        codes_2d=(centred @ v[:2].T).numpy(),
        labels=labels,
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
