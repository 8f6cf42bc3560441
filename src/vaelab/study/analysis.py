"""What the study measures across runs, beyond each run's own evaluation: the data overview and
baselines, the trade-off figures across β, where the models' codes lie against the prior, the
AE-vs-tuned-VAE interpolations, and the reference classifier's record.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.data import info as data_info
from vaelab.data.store import split_arrays
from vaelab.evaluate import EvalConfig, decode, keys, load_eval_data
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.interpolation import interpolation_paths, pick_pairs
from vaelab.report import figures
from vaelab.runtime import stream_seed
from vaelab.study.presets import StudyConfig
from vaelab.study.runs import RunBook
from vaelab.study.schema import (
    Baselines,
    ClassifierInfo,
    CodeStats,
    DataInfo,
    InterpolationSummary,
    parse,
)


def data_overview(
    cfg: StudyConfig, arrays: dict, n_train: int, fig_dir: Path
) -> tuple[DataInfo, Baselines]:
    """The dataset's info, a strip of training images, and the baselines the report compares
    against (the mean image's SSE, the prior's norm)."""
    c = cfg
    x_tr, _ = split_arrays(arrays, "train")
    strip = torch.from_numpy(x_tr[:16]).float() / 255.0
    figures.image_grid(
        fig_dir / "data_strip.png", strip, f"{c.dataset}: the first 16 training images", nrow=16
    )
    test_images, _ = split_arrays(arrays, "test")
    x_te = torch.from_numpy(test_images[: c.eval_limit]).double() / 255.0
    mean_img = torch.from_numpy(x_tr[:n_train]).double().mean(0) / 255.0
    mean_image_sse = float((x_te - mean_img).pow(2).flatten(1).sum(1).mean())
    baselines = Baselines(mean_image_sse=mean_image_sse, prior_norm=math.sqrt(c.latent_dim))
    return parse(
        DataInfo, data_info(c.dataset, c.data_dir), "the dataset's info", "a bug in vaelab"
    ), baselines


def classifier_info(cfg: StudyConfig, device: torch.device) -> ClassifierInfo:
    """The reference classifier every run's sample metrics use."""
    c = cfg
    meta = clf.reference_classifier(c.dataset, c.data_dir, variant=c.classifier, device=device)
    return ClassifierInfo(
        variant=meta[1]["variant"],
        test_accuracy=meta[1]["test_accuracy"],
        epochs=meta[1]["epochs"],
        train_images=meta[1]["train_images"],
    )


def tradeoff_figures(
    trials: dict[float, dict[str, float]],
    chosen: float,
    ae: dict[str, float],
    fig_dir: Path,
    latent_dim: int,
) -> None:
    """The β-search trials' metrics against β (rate–distortion, FD, entropy, active units,
    probes when the trials had them), the chosen β marked."""
    betas = sorted(trials)
    col = {k: [trials[b][k] for b in betas] for k in trials[betas[0]]}
    figures.scatter_labelled(
        fig_dir / "rate_distortion.png",
        col[keys.TEST_KL],
        col[keys.TEST_SSE],
        [f"β={b:g}" for b in betas],
        "Rate–distortion across β (test set)",
        "rate: KL per image (nats)",
        "distortion: SSE per image",
    )
    _beta_curves(fig_dir, betas, col, chosen, ae, latent_dim)


def _beta_curves(
    fig_dir: Path,
    betas: list[float],
    col: dict[str, list[float]],
    chosen: float,
    ae: dict[str, float],
    latent_dim: int,
) -> None:
    """The trials' metrics (`col`: one value per β) against β, the chosen β marked."""
    figures.xy_lines(
        fig_dir / "beta_fd.png",
        betas,
        {"prior samples": col[keys.SAMPLES_FD], "reconstructions": col[keys.RECON_FD]},
        "Fréchet distance to the test set vs β",
        "β",
        "Fréchet distance (classifier features)",
        logy=True,
        hline=(ae[keys.FLOOR_FD], "floor: real train vs test"),
        mark=chosen,
    )
    figures.xy_lines(
        fig_dir / "beta_entropy.png",
        betas,
        {
            "class entropy of samples": col[keys.SAMPLES_CLASS_ENTROPY],
            "mean confidence on samples": col[keys.SAMPLES_CONFIDENCE],
        },
        "Diversity and clarity of prior samples vs β",
        "β",
        "nats / probability",
        hline=(math.log(10), "ln 10 (uniform over classes)"),
        mark=chosen,
    )
    figures.xy_lines(
        fig_dir / "beta_active_units.png",
        betas,
        {"active units": col[keys.TEST_ACTIVE_UNITS]},
        "Active latent units vs β (Burda et al. criterion)",
        "β",
        f"active units (of {latent_dim})",
        mark=chosen,
    )
    if keys.PROBE_LINEAR not in col:
        return  # trials had the selection evaluation only (no probes)
    figures.xy_lines(
        fig_dir / "beta_probe.png",
        betas,
        {"linear probe": col[keys.PROBE_LINEAR], "5-NN": col[keys.PROBE_KNN]},
        "Downstream accuracy of μ vs β",
        "β",
        "test accuracy",
        hline=(ae[keys.PROBE_LINEAR], "AE linear probe"),
        mark=chosen,
    )


def _test_images(cfg: StudyConfig, device: torch.device, labels: bool = False) -> Any:
    """The test images every run is evaluated on (x in [0, 1]), with labels if asked."""
    c = cfg
    x, _, y = load_eval_data(
        c.dataset, "test", data_dir=c.data_dir, limit=c.eval_limit, seed=c.seed, device=device
    )
    return (x, y) if labels else x


@torch.no_grad()
def code_stats(study: RunBook, names: list[str], device: torch.device) -> dict[str, CodeStats]:
    """Where each model's test codes live, compared with the N(0, I) prior."""
    from vaelab.train.checkpoint import load_model

    cfg = study.cfg
    out = {}
    for name in names:
        model, _ = load_model(study.root / "runs" / name, "best", device)
        x = _test_images(cfg, device)
        mu, q = decode.codes(model, x)
        seen = mu  # the codes the decoder was trained on: μ for the AE, z ~ q(z|x) for a VAE
        if q is not None:  # drawn on the CPU: the same codes whatever the device
            seed = stream_seed(cfg.seed, "study_code_noise")
            seen = q.to("cpu").sample(torch.Generator().manual_seed(seed))
        std = mu.double().std(0)
        # Off-manifold test: distance from a prior sample to its nearest test code, relative
        # to the distance from a held-out test code to its nearest other test code.
        g = torch.Generator().manual_seed(stream_seed(cfg.seed, "study_prior"))
        codes = seen[: len(seen) // 2].double().cpu()
        held = seen[len(seen) // 2 :].double().cpu()
        prior = torch.randn(len(held), mu.shape[1], generator=g, dtype=torch.float64)
        nn_prior = torch.cdist(prior, codes).min(1).values.mean()
        nn_real = torch.cdist(held, codes).min(1).values.mean()
        out[name] = CodeStats(
            prior_nn_ratio=float(nn_prior / nn_real),
            norm_mean=float(mu.double().norm(dim=1).mean()),
            dim_std_min=float(std.min()),
            dim_std_max=float(std.max()),
            dim_mean_abs_max=float(mu.double().mean(0).abs().max()),
        )
    return out


def interpolations(
    study: RunBook, tuned: str, device: torch.device, fig_dir: Path
) -> dict[str, InterpolationSummary]:
    """Figures of the AE's and the tuned VAE's interpolation paths side by side (lerp and
    slerp) with the classifier's confidence along them; the runs' interpolation summaries."""
    from vaelab.train.checkpoint import load_model

    cfg, runs = study.cfg, study.runs
    models = {
        "AE": load_model(study.root / "runs" / "ae", "best", device)[0],
        f"VAE β={runs[tuned].beta:g}": load_model(study.root / "runs" / tuned, "best", device)[0],
    }
    x, y = _test_images(cfg, device, labels=True)
    classifier, _ = clf.reference_classifier(
        cfg.dataset, cfg.data_dir, variant=cfg.classifier, device=device
    )
    curves: dict[str, list[np.ndarray]] = {}
    ecfg = EvalConfig()  # the evaluation's pairs and steps, so figures match eval.json
    for a, b in ecfg.pairs:
        pairs = pick_pairs(y, a, b, ecfg.n_pairs, cfg.seed)
        rows, labels = [], []
        for mode in ("lerp", "slerp"):
            for mname, model in models.items():
                paths = interpolation_paths(model, x, pairs, ecfg.steps, mode)
                for j, p in enumerate(paths):
                    rows.append(p)
                    labels.append(f"{mname} {mode} #{j + 1}")
                    probs = clf.classify(classifier, p)[1]
                    curves.setdefault(f"{mname} {mode}", []).append(probs.max(1))
        figures.interpolation_strips(
            fig_dir / f"interp_compare_{a}to{b}.png",
            rows,
            labels,
            f"{a}→{b}: AE vs tuned VAE, lerp and slerp (start, {ecfg.steps} decoded codes, end)",
        )
    stacked = {k: np.stack(v) for k, v in curves.items()}
    figures.confidence_curves(
        fig_dir / "interp_confidence_compare.png",
        stacked,
        "Classifier confidence along paths: AE vs tuned VAE",
    )
    summary: dict[str, InterpolationSummary] = {}
    for name, label in (("ae", "AE"), (tuned, f"VAE β={runs[tuned].beta:g}")):
        for mode in ("lerp", "slerp"):
            summary[f"{label} {mode}"] = InterpolationSummary.from_eval(runs[name].eval, mode)
    return summary
