"""`vaelab study`: the course study as resumable runs in STUDY_DIR/runs/<name>/, stage by stage
(data overview, AE, VAE at β = 0 and 10, β search in vaelab.study.search, tuned VAE,
interpolations and representation), then study.json and the report (vaelab.report.sections);
re-running it after a crash finishes without redoing work. What the study measures across runs:
the data overview and baselines, where the codes lie against the prior, the AE-vs-tuned-VAE
interpolation measures (from the evaluations, which stored the paths the report draws), the
reference classifier.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab import models
from vaelab.config import TrainConfig
from vaelab.data import info as data_info
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.evaluate import classifier as clf
from vaelab.evaluate import keys, load_eval_data
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.report import figures
from vaelab.runtime import environment, resolve_device, stream_seed
from vaelab.study.presets import StudyConfig
from vaelab.study.runs import Pending, RunBook, beta_name
from vaelab.study.schema import (
    Baselines,
    ClassifierInfo,
    CodeStats,
    DataInfo,
    Environment,
    InterpolationSummary,
    SearchResult,
    StudyResult,
    parse,
)
from vaelab.study.search import BetaQueue, BetaSearch, SearchPlacement
from vaelab.tune import halving

STAGES = ("data", "ae", "extremes", "search", "tuned", "interpolation", "representation")


@contextmanager
def timed(book: RunBook, key: str, title: str, pending: Pending) -> Iterator[None]:
    """One stage: announce it with the work left, record its wall time."""
    i = STAGES.index(key) + 1
    left = book.remaining_s(pending)
    book.say(f"[{i}/{len(STAGES)}] {title} · about {left / 60:.1f} min of work left")
    t0 = time.perf_counter()
    yield
    book.stage_time[key] = book.stage_time.get(key, 0.0) + time.perf_counter() - t0


def pending(book: RunBook) -> Pending:
    """The runs this preset will train: (name, epochs, images per epoch, evaluation)."""
    c, n = book.cfg, book.n_train
    out = [
        ("ae", c.ae_epochs, n, "full"),
        ("vae_beta0", c.extreme_epochs, n, "full"),
        ("vae_beta10", c.extreme_epochs, n, "full"),
    ]
    if c.search == "grid":
        out += [(beta_name(b), c.trial_epochs, n, "selection") for b in c.decades]
        out += [(f"refine_{i}", c.trial_epochs, n, "selection") for i in range(2)]
        return out
    count = len(c.decades) + 2 * c.refine
    for rung in BetaSearch(book).plan():
        images = min(n, rung.limit_train or n)
        out += [(f"r{rung.index}_{i}", rung.epochs, images, "selection") for i in range(count)]
        count = halving.promoted_count(count, c.halving_eta)
    out[-1] = (*out[-1][:3], "full")
    return out


def _stages(book: RunBook, search: BetaSearch, queue: BetaQueue) -> StudyResult:
    """Every stage of the study, then its result."""
    c, runs = book.cfg, book.runs
    t0 = time.perf_counter()
    device = resolve_device(c.train.device)
    arrays = load_arrays(*c.train.data_args)
    x_tr, _ = split_arrays(arrays, "train")
    book.n_train = min(len(x_tr), c.train.limit_train or len(x_tr))
    plan = pending(book)

    with timed(book, "data", "data overview", plan):
        data, baselines = data_overview(c, arrays, book.n_train, book.root / "figures")
    with timed(book, "ae", "auto-encoder", plan):
        book.ensure_run("ae", c.run_config("ae", 0.0, c.ae_epochs), "ae")
    with timed(book, "extremes", "VAE at β = 0 and β = 10", plan):
        for b, name in ((0.0, "vae_beta0"), (10.0, "vae_beta10")):
            book.ensure_run(name, c.run_config("vae", b, c.extreme_epochs), "extremes")
    with timed(book, "search", f"β search ({c.search})", plan):
        result = search.run(queue)
    tuned_name, tuned_cfg = _tuned(book, result)
    # the tuned run is not in `plan` (its β was unknown): announce its own work
    todo = [(tuned_name, tuned_cfg.epochs, book.n_train, "full")]
    with timed(book, "tuned", f"tuned VAE (β = {result.chosen_beta:g})", todo):
        tuned = book.ensure_run(tuned_name, tuned_cfg, "tuned")
        stats = code_stats(book, ["ae", tuned.name], device)
    # Unlabelled images: the evaluations skipped paths and probes (eval.json's skipped/<group>),
    # so these two stages have nothing to summarise; the report says which numbers it cannot give.
    labelled = "skipped/interpolation" not in tuned.eval
    interp: dict[str, InterpolationSummary] = {}
    representation: dict[str, dict[str, float]] = {}
    if not labelled:
        book.say("[6-7/7] interpolations, representation usefulness: skipped (no labels)")
    else:
        with timed(book, "interpolation", "interpolations AE vs tuned VAE", []):
            for name, label in (("ae", "AE"), (tuned.name, f"VAE β={tuned.beta:g}")):
                for mode in ("lerp", "slerp"):
                    interp[f"{label} {mode}"] = InterpolationSummary.from_eval(
                        runs[name].eval, mode
                    )
        with timed(book, "representation", "representation usefulness", []):
            representation = {
                name: {k: r.eval[k] for k in (keys.PROBE_LINEAR, keys.PROBE_KNN)}
                for name, r in runs.items()
                if r.evaluation == "full"
            }
    return StudyResult(
        config=c,
        env=Environment(**environment(device)),
        data=data,
        baselines=baselines,
        runs=runs,
        search=result,
        tuned=tuned.name,
        code_stats=stats,
        interpolation=interp,
        representation=representation,
        classifier=classifier_info(c, device, labelled),
        **_totals(book),
        wall_time_s=time.perf_counter() - t0,
    )


def _totals(book: RunBook) -> dict[str, Any]:
    """The study's time and work in total, and the order of its stages and runs."""
    runs = book.runs.values()
    return dict(
        stage_time_s=book.stage_time,
        stage_order=[k for k in STAGES if k in book.stage_time],
        run_order=list(book.runs),
        compute_time_s=sum(r.train.get("train_time_s", 0) + r.eval[keys.EVAL_TIME] for r in runs),
        train_images=sum(r.train_images for r in runs),
    )


def _tuned(book: RunBook, search: SearchResult) -> tuple[str, TrainConfig]:
    """The tuned run's name and config: the chosen β with the preset's full budget (trained and
    given the full evaluation by the tuned stage)."""
    c, beta = book.cfg, search.chosen_beta
    if c.search == "grid":
        return search.trial_run(beta), c.run_config("vae", beta, c.trial_epochs)
    return f"beta_{beta:g}_tuned", c.run_config("vae", beta, c.tuned_epochs)


def data_overview(
    cfg: StudyConfig, arrays: dict, n_train: int, fig_dir: Path
) -> tuple[DataInfo, Baselines]:
    """The dataset's info, a strip of training images, and the baselines the report compares
    against (the mean image's SSE, the prior's norm)."""
    c = cfg.train
    x_tr, _ = split_arrays(arrays, "train")
    strip = x_tr[:16].astype(np.float32) / 255.0
    figures.image_grid(
        fig_dir / "data_strip.png", strip, f"{c.dataset}: the first 16 training images", nrow=16
    )
    x_te = torch.from_numpy(split_arrays(arrays, "test")[0][: cfg.eval.limit]).double() / 255.0
    mean_img = torch.from_numpy(x_tr[:n_train]).double().mean(0) / 255.0
    mean_image_sse = float((x_te - mean_img).pow(2).flatten(1).sum(1).mean())
    info = data_info(*c.data_args)
    baselines = Baselines(mean_image_sse=mean_image_sse, prior_norm=math.sqrt(c.latent_dim))
    return parse(DataInfo, info, "the dataset's info", "a bug in vaelab"), baselines


def classifier_info(cfg: StudyConfig, device: torch.device, labelled: bool) -> ClassifierInfo:
    """The reference classifier every run's sample metrics use (without labels, the label-free
    network whose features stand in for it: no test accuracy)."""
    _, meta = clf.reference_classifier(
        *cfg.train.data_args, variant=cfg.eval.classifier, device=device, label_free=not labelled
    )
    return ClassifierInfo(**{f.name: meta[f.name] for f in dataclasses.fields(ClassifierInfo)})


@torch.no_grad()
def code_stats(study: RunBook, names: list[str], device: torch.device) -> dict[str, CodeStats]:
    """Where each model's test codes live, compared with the N(0, I) prior."""
    from vaelab.train.checkpoint import load_model

    c = study.cfg.train  # the test images every run is evaluated on, in [0, 1]:
    x = load_eval_data(
        c.dataset,
        "test",
        data_dir=c.data_dir,
        image_size=c.image_size,
        color=c.color,
        limit=study.cfg.eval.limit,
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


def run_study(cfg: StudyConfig, placement: SearchPlacement | None = None) -> StudyResult:
    """Run (or finish) the study in cfg.out and write study.json, report.md and report.html.
    `placement`: where the β search's trials are queued and how many local processes train
    them (default: sqlite:///STUDY_DIR/search.db, this process alone)."""
    from vaelab.report.sections import write_report

    root = Path(cfg.out)
    book = RunBook(cfg)
    search = BetaSearch(book, placement)
    queue = search.open_queue()  # first: a refused storage or study creates and trains nothing
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock", blocking=False), book.log.to_file(root / "study.log"):
        try:
            search.start(queue)
            result = _stages(book, search, queue)
        except BaseException:
            search.stop_workers()  # local search workers stop when a stage fails
            raise
        atomic_write_json(root / "study.json", result.to_dict())  # the report cites this file
        write_report(root, result)
        book.say(f"study done in {result.wall_time_s / 60:.1f} min: {root / 'report.html'}")
    return result
