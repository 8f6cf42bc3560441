"""`vaelab study`: the course study as resumable runs in STUDY_DIR/runs/<name>/, stage by stage
(data overview, AE, VAE at β = 0 and 10, β search in vaelab.study.search, tuned VAE,
interpolations and representation in vaelab.study.analysis), then study.json and the report
(vaelab.report.sections); re-running it after a crash finishes without redoing work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.evaluate import keys
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.runtime import environment, resolve_device
from vaelab.study import analysis
from vaelab.study.presets import StudyConfig
from vaelab.study.runs import Pending, RunBook, beta_name
from vaelab.study.schema import Environment, InterpolationSummary, SearchResult, StudyResult
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


def run(book: RunBook, search: BetaSearch, queue: BetaQueue) -> StudyResult:
    """Every stage of the study; local search workers are stopped if one fails."""
    try:
        search.start(queue)
        return _stages(book, search, queue)
    except BaseException:
        search.stop_workers()
        raise


def _stages(book: RunBook, search: BetaSearch, queue: BetaQueue) -> StudyResult:
    c, runs = book.cfg, book.runs
    t0 = time.perf_counter()
    device = resolve_device(c.train.device)
    fig_dir = book.root / "figures"
    arrays = load_arrays(c.train.dataset, c.train.data_dir, c.train.image_size, c.train.color)
    x_tr, _ = split_arrays(arrays, "train")
    book.n_train = min(len(x_tr), c.train.limit_train or len(x_tr))
    plan = pending(book)

    with timed(book, "data", "data overview", plan):
        data, baselines = analysis.data_overview(c, arrays, book.n_train, fig_dir)
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
        code_stats = analysis.code_stats(book, ["ae", tuned.name], device)
    # Unlabelled images: the evaluations skipped paths and probes (eval.json's skipped/<group>),
    # so these two stages have nothing to summarise; the report says which numbers it cannot give.
    labelled = "skipped/interpolation" not in tuned.eval
    interp: dict[str, InterpolationSummary] = {}
    representation: dict[str, dict[str, float]] = {}
    if not labelled:
        book.say("[6-7/7] interpolations, representation usefulness: skipped (no labels)")
    else:
        with timed(book, "interpolation", "interpolations AE vs tuned VAE", []):
            interp = analysis.interpolations(runs, tuned.name)
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
        code_stats=code_stats,
        interpolation=interp,
        representation=representation,
        classifier=analysis.classifier_info(c, device, labelled),
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
        result = run(book, search, queue)
        atomic_write_json(root / "study.json", result.to_dict())  # the report cites this file
        write_report(root, result)
        book.say(f"study done in {result.wall_time_s / 60:.1f} min: {root / 'report.html'}")
    return result
