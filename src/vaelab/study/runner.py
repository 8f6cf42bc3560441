"""`vaelab study`: the course study as separate resumable runs inside STUDY_DIR, stage by stage.

Layout: STUDY_DIR/runs/<name>/ (one training run each: ae, vae_beta0, vae_beta10, beta_<β>),
STUDY_DIR/figures/ (study-level figures), study.json, report.md, report.html, study.log.
A finished run is reused, an unfinished one resumed (vaelab.study.runs); re-running the command
after a crash finishes the study without redoing finished work.

The stages, in order: data overview, AE, VAE at β = 0 and 10, β search (vaelab.study.search),
tuned VAE, interpolations and representation (vaelab.study.analysis); then study.json and the
report (vaelab.report.study).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.evaluate import keys
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.runtime import environment, resolve_device
from vaelab.study import analysis
from vaelab.study.presets import StudyConfig
from vaelab.study.runs import Pending, Study, beta_name
from vaelab.study.schema import (
    Environment,
    RunEntry,
    SearchResult,
    StudyResult,
)
from vaelab.study.search import BetaSearch, SearchPlacement
from vaelab.tune import halving
from vaelab.tune.search_queue import SearchQueue

STAGES = ("data", "ae", "extremes", "search", "tuned", "interpolation", "representation")


@contextmanager
def timed(study: Study, key: str, title: str, pending: Pending) -> Iterator[None]:
    """One stage: announce it with the work left, record its wall time."""
    i = STAGES.index(key) + 1
    left = study.remaining_s(pending)
    study.say(f"[{i}/{len(STAGES)}] {title} · about {left / 60:.1f} min of work left")
    t0 = time.perf_counter()
    yield
    study.stage_time[key] = study.stage_time.get(key, 0.0) + time.perf_counter() - t0


def pending(study: Study) -> Pending:
    """The runs this preset will train: (name, epochs, images per epoch, evaluation)."""
    c, n = study.cfg, study.n_train
    trial_n = min(n, c.trial_limit_train or n)
    out = [
        ("ae", c.ae_epochs, n, "full"),
        ("vae_beta0", c.extreme_epochs, n, "full"),
        ("vae_beta10", c.extreme_epochs, n, "full"),
    ]
    if c.search == "grid":
        out += [(beta_name(b), c.trial_epochs, n, "selection") for b in c.decades]
        out += [(f"refine_{i}", c.trial_epochs, n, "selection") for i in range(2)]
        return out
    plan = halving.rungs(c.trial_epochs, trial_n, c.halving_eta, c.tuned_epochs, c.halving_rungs)
    count = len(c.decades) + 2 * c.refine
    for rung in plan:
        images = rung.limit_train or n
        out += [(f"r{rung.index}_{i}", rung.epochs, images, "selection") for i in range(count)]
        count = halving.promoted_count(count, c.halving_eta)
    out[-1] = (out[-1][0], out[-1][1], out[-1][2], "full")
    return out


def run(study: Study, search: BetaSearch) -> StudyResult:
    """Every stage of the study; local search workers are stopped if one fails."""
    queue = search.open_queue()  # before any work: a refused study trains nothing
    try:
        return _stages(study, search, queue)
    except BaseException:
        search.stop_workers()
        raise


def _stages(study: Study, search: BetaSearch, queue: SearchQueue) -> StudyResult:
    c, runs = study.cfg, study.runs
    t0 = time.perf_counter()
    device = resolve_device(c.device)
    fig_dir = study.root / "figures"
    arrays = load_arrays(c.dataset, c.data_dir)
    x_tr, _ = split_arrays(arrays, "train")
    study.n_train = min(len(x_tr), c.limit_train or len(x_tr))
    plan = pending(study)

    with timed(study, "data", "data overview", plan):
        data, baselines = analysis.data_overview(c, arrays, study.n_train, fig_dir)
    with timed(study, "ae", "auto-encoder", plan):
        ae = study.ensure_run("ae", c.train_config("ae", 0.0, c.ae_epochs), "ae")
    with timed(study, "extremes", "VAE at β = 0 and β = 10", plan):
        for b, name in ((0.0, "vae_beta0"), (10.0, "vae_beta10")):
            study.ensure_run(name, c.train_config("vae", b, c.extreme_epochs), "extremes")
    with timed(study, "search", f"β search ({c.search})", plan):
        result = search.run(queue)
        trials = {b: runs[result.trial_run(b)].eval for b in result.trials}
        analysis.tradeoff_figures(trials, result.chosen_beta, ae.eval, fig_dir, c.latent_dim)
    with timed(study, "tuned", f"tuned VAE (β = {result.chosen_beta:g})", []):
        tuned = _tuned(study, result)
        code_stats = analysis.code_stats(study, ["ae", tuned.name], device)
    with timed(study, "interpolation", "interpolations AE vs tuned VAE", []):
        interp = analysis.interpolations(study, tuned.name, device, fig_dir)
    with timed(study, "representation", "representation usefulness", []):
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
        code_stats=code_stats,
        interpolation=interp,
        representation=representation,
        classifier=analysis.classifier_info(c, device),
        **_totals(study),
        wall_time_s=time.perf_counter() - t0,
    )


def _totals(study: Study) -> dict[str, Any]:
    """The study's time and work in total, and the order of its stages and runs."""
    runs = study.runs.values()
    return dict(
        stage_time_s=study.stage_time,
        stage_order=[k for k in STAGES if k in study.stage_time],
        run_order=list(study.runs),
        compute_time_s=sum(r.train.get("train_time_s", 0) + r.eval[keys.EVAL_TIME] for r in runs),
        train_images=sum(r.train_images for r in runs),
    )


def _tuned(study: Study, search: SearchResult) -> RunEntry:
    """The chosen β with the preset's full budget and the full evaluation."""
    c, beta = study.cfg, search.chosen_beta
    if c.search == "grid":
        name = search.trial_run(beta)
        return study.ensure_run(name, c.train_config("vae", beta, c.trial_epochs), "tuned")
    tcfg = c.train_config("vae", beta, c.tuned_epochs)
    return study.ensure_run(f"beta_{beta:g}_tuned", tcfg, "tuned")


def run_study(cfg: StudyConfig, placement: SearchPlacement | None = None) -> StudyResult:
    """Run (or finish) the study in cfg.out and write study.json, report.md and report.html.
    `placement`: where the β search's trials are queued and how many local processes train
    them (default: sqlite:///STUDY_DIR/search.db, this process alone)."""
    from vaelab.report.study import write_report

    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock", blocking=False):
        study = Study(cfg)
        with study.logging_to(root / "study.log"):
            result = run(study, BetaSearch(study, placement))
            atomic_write_json(root / "study.json", result.to_dict())  # the report cites this file
            write_report(root, result)
            study.say(f"study done in {result.wall_time_s / 60:.1f} min: {root / 'report.html'}")
    return result
