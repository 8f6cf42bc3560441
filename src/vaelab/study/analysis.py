"""What the study measures across runs: the data overview and baselines, where the codes lie
against the prior, the AE-vs-tuned-VAE interpolation measures, the reference classifier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vaelab import models
from vaelab.data import info as data_info
from vaelab.data.store import split_arrays
from vaelab.evaluate import classifier as clf
from vaelab.evaluate import load_eval_data
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
    RunEntry,
    parse,
)


def data_overview(
    cfg: StudyConfig, arrays: dict, n_train: int, fig_dir: Path
) -> tuple[DataInfo, Baselines]:
    """The dataset's info, a strip of training images, and the baselines the report compares
    against (the mean image's SSE, the prior's norm)."""
    c = cfg
    x_tr, _ = split_arrays(arrays, "train")
    strip = x_tr[:16].astype(np.float32) / 255.0
    figures.image_grid(
        fig_dir / "data_strip.png",
        strip,
        f"{c.train.dataset}: the first 16 training images",
        nrow=16,
    )
    test_images, _ = split_arrays(arrays, "test")
    x_te = torch.from_numpy(test_images[: c.eval.limit]).double() / 255.0
    mean_img = torch.from_numpy(x_tr[:n_train]).double().mean(0) / 255.0
    mean_image_sse = float((x_te - mean_img).pow(2).flatten(1).sum(1).mean())
    baselines = Baselines(mean_image_sse=mean_image_sse, prior_norm=math.sqrt(c.train.latent_dim))
    return parse(
        DataInfo,
        data_info(c.train.dataset, c.train.data_dir, c.train.image_size, c.train.color),
        "the dataset's info",
        "a bug in vaelab",
    ), baselines


def classifier_info(cfg: StudyConfig, device: torch.device, labelled: bool) -> ClassifierInfo:
    """The reference classifier every run's sample metrics use (without labels, the label-free
    network whose features stand in for it: no test accuracy)."""
    c = cfg.train
    meta = clf.reference_classifier(
        c.dataset,
        c.data_dir,
        c.image_size,
        c.color,
        variant=cfg.eval.classifier,
        device=device,
        label_free=not labelled,
    )
    return ClassifierInfo(
        variant=meta[1]["variant"],
        test_accuracy=meta[1]["test_accuracy"],
        epochs=meta[1]["epochs"],
        train_images=meta[1]["train_images"],
    )


@torch.no_grad()
def code_stats(study: RunBook, names: list[str], device: torch.device) -> dict[str, CodeStats]:
    """Where each model's test codes live, compared with the N(0, I) prior."""
    from vaelab.train.checkpoint import load_model

    c = study.cfg.train  # the test images every run is evaluated on, in [0, 1]:
    limit = study.cfg.eval.limit
    x = load_eval_data(
        c.dataset,
        "test",
        data_dir=c.data_dir,
        image_size=c.image_size,
        color=c.color,
        limit=limit,
        seed=c.seed,
        device=device,
    ).x
    out = {}
    for name in names:
        model, _ = load_model(study.root / "runs" / name, "best", device)
        mu, q = models.codes(model, x)
        seen = mu  # the codes the decoder was trained on: μ for the AE, z ~ q(z|x) for a VAE
        if q is not None:  # drawn on the CPU: the same codes whatever the device
            seed = stream_seed(c.seed, "study_code_noise")
            seen = q.to("cpu").sample(torch.Generator().manual_seed(seed))
        std = mu.double().std(0)
        # Off-manifold test: distance from a prior sample to its nearest test code, relative
        # to the distance from a held-out test code to its nearest other test code.
        g = torch.Generator().manual_seed(stream_seed(c.seed, "study_prior"))
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


def interpolations(runs: dict[str, RunEntry], tuned: str) -> dict[str, InterpolationSummary]:
    """The AE's and the tuned VAE's interpolation measures, lerp and slerp, from their
    evaluations (the report draws their paths from what those stored)."""
    summary: dict[str, InterpolationSummary] = {}
    for name, label in (("ae", "AE"), (tuned, f"VAE β={runs[tuned].beta:g}")):
        for mode in ("lerp", "slerp"):
            summary[f"{label} {mode}"] = InterpolationSummary.from_eval(runs[name].eval, mode)
    return summary
