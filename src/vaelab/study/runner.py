"""`vaelab study`: the course study as separate resumable runs inside STUDY_DIR.

Layout: STUDY_DIR/runs/<name>/ (one training run each: ae, vae_beta0, vae_beta10, beta_<β>),
STUDY_DIR/figures/ (study-level figures), study.json, report.md, report.html, study.log.
A finished run is reused, an unfinished one resumed; an evaluation is reused when its options
match. Re-running the command after a crash finishes the study without redoing finished work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial

from vaelab import figures
from vaelab.config import TrainConfig
from vaelab.data import info as data_info
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError
from vaelab.evaluation import (
    SELECTION_GROUPS,
    EvalConfig,
    decode,
    evaluate_run,
    keys,
    load_eval_data,
)
from vaelab.evaluation import classifier as clf
from vaelab.evaluation.interpolation import interpolation_paths, pick_pairs
from vaelab.fsutil import atomic_write_json, file_lock
from vaelab.runtime import environment, resolve_device, stream_seed
from vaelab.study import halving
from vaelab.study.presets import StudyConfig
from vaelab.study.schema import (
    Baselines,
    ClassifierInfo,
    CodeStats,
    DataInfo,
    Environment,
    InterpolationSummary,
    RunEntry,
    RungRecord,
    SearchResult,
    StudyResult,
    load_study,
    parse,
    to_json,
)
from vaelab.study.search_queue import (
    RUN_ATTR,
    SEARCH_DB,
    SearchQueue,
    evaluate_batch,
    open_search,
)
from vaelab.study.selection import halving_rule_text, select_beta
from vaelab.sweep.storage import default_storage_url
from vaelab.training import train

STAGES = ("data", "ae", "extremes", "search", "tuned", "interpolation", "representation")


def beta_name(beta: float, rung: int | None = None) -> str:
    """Run name of a β trial: `beta_<β>` (grid search), `beta_<β>_r<rung>` (halving)."""
    return f"beta_{beta:g}" if rung is None else f"beta_{beta:g}_r{rung}"


def _betas(betas: list[float]) -> str:
    return ", ".join(f"{b:g}" for b in betas)


@dataclass
class SearchPlacement:
    """Where the β search's trials are queued and who trains them."""

    storage: str | None = None
    """Study storage URL (None: the embedded sqlite:///STUDY_DIR/search.db)."""
    name: str | None = None
    """Study name in the storage (None: `<preset>-<hash of the definition>`)."""
    workers: int = 1
    """Processes on this machine working on the search, the coordinator included."""
    threads: int | None = None
    """torch threads of each of them during the search (None: cores / workers)."""

    def threads_each(self) -> int | None:
        """torch threads per process: `threads`, else cores / workers (as `vaelab sweep
        --workers` shares them); None: one process, PyTorch's default."""
        from vaelab.config import available_cores

        if self.threads:
            return self.threads
        return max(1, available_cores() // self.workers) if self.workers > 1 else None


class Study:
    def __init__(self, cfg: StudyConfig, placement: SearchPlacement | None = None) -> None:
        self.cfg = cfg
        self.placement = placement or SearchPlacement()
        self.prefix = ""  # a worker's tag before each line on stderr
        self.local_workers: Any = None  # vaelab.study.worker.LocalWorkers, with --workers K
        self.root = Path(cfg.out)
        self.runs: dict[str, RunEntry] = {}
        self.stage_time: dict[str, float] = {}
        self.ips = 2000.0  # training images/s, updated from finished runs
        self.eval_s = {"full": 60.0, "selection": 5.0}  # seconds per evaluation, likewise
        self.log = logging.getLogger(f"vaelab.study.{self.root.resolve()}")
        self.n_train = 0

    # ------------------------------------------------------------------ bookkeeping
    def say(self, msg: str) -> None:
        print(f"{self.prefix}{msg}", file=sys.stderr, flush=True)
        self.log.info(msg)

    def rel_dir(self, run_dir: str | Path) -> str:
        """A run's `dir` in study.json: relative to the study directory when inside it."""
        path = Path(run_dir).resolve()
        with contextlib.suppress(ValueError):
            return path.relative_to(self.root.resolve()).as_posix()
        return str(path)

    def eval_config(self, kind: str) -> EvalConfig:
        """`full`: every metric and figure; `selection`: what choosing β needs (reconstruction
        accuracy and rate/distortion, sample FD and class entropy) on fewer images/samples."""
        c = self.cfg
        common = dict(
            iw_samples=c.iw_samples,
            iw_limit=c.iw_limit,
            probe_train=c.probe_train,
            classifier=c.classifier,
            seed=c.seed,
            device=c.device,
            log=lambda m: self.say(f"    {m}"),
        )
        if kind == "selection":
            return EvalConfig(
                groups=SELECTION_GROUPS,
                figures=False,
                limit=c.selection_limit,
                n_samples=c.selection_samples,
                **common,  # type: ignore[arg-type]
            )
        return EvalConfig(limit=c.eval_limit, n_samples=c.n_samples, **common)  # type: ignore[arg-type]

    def remaining_s(self, pending: list[tuple[str, int, int, str]]) -> float:
        """Estimated seconds for pending (name, epochs, images, eval kind) runs."""
        todo = [p for p in pending if p[0] not in self.runs]
        train_s = sum(e * n / self.ips for _, e, n, _ in todo)
        return train_s + sum(self.eval_s[k] for *_, k in todo)

    @contextmanager
    def timed(
        self, key: str, title: str, pending: list[tuple[str, int, int, str]]
    ) -> Iterator[None]:
        """One stage: announce it with the work left, record its wall time."""
        i = STAGES.index(key) + 1
        left = self.remaining_s(pending)
        self.say(f"[{i}/{len(STAGES)}] {title} · about {left / 60:.1f} min of work left")
        t0 = time.perf_counter()
        yield
        self.stage_time[key] = self.stage_time.get(key, 0.0) + time.perf_counter() - t0

    def ensure_run(
        self,
        name: str,
        tcfg: TrainConfig,
        stage: str,
        evaluation: str = "full",
        run_dir: Path | None = None,
    ) -> RunEntry:
        """Train (or reuse, or resume) and evaluate one run in `run_dir` (default
        STUDY_DIR/runs/<name>); returns its study entry.

        A run whose config equals one already done in this study is not trained twice: the
        earlier run stands for both (it is evaluated again only if it lacks this evaluation;
        a run another machine trained stands for nothing here, its files are there)."""
        for other in self.runs.values():
            if (
                other.config == tcfg.to_dict()
                and (other.evaluation == evaluation or evaluation == "selection")
                and (self.root / other.dir / "DONE").is_file()
            ):
                self.say(f"  {name} is identical to {other.name}: reusing it")
                return other
        run_dir = run_dir or self.root / "runs" / name
        resume = (run_dir / "config.json").exists()
        done_before = (run_dir / "DONE").exists()
        what = "reusing" if done_before else ("resuming" if resume else "training")
        self.say(f"  {what} {name} ({tcfg.model}, β={tcfg.beta:g}, {tcfg.epochs} epochs)")
        try:
            result = train(tcfg, run_dir, resume=resume)
        except ConfigError as e:
            raise ConfigError(
                f"{run_dir} holds a run with another configuration ({e}); use a new --out for "
                "this preset or delete that run directory"
            ) from None
        if not done_before:
            self.ips = float(result.summary.get("images_per_s_mean", self.ips)) or self.ips
        metrics, fresh = self._evaluate(run_dir, evaluation)
        entry = RunEntry(
            name=name,
            stage=stage,
            model=tcfg.model,
            beta=tcfg.beta,
            epochs=tcfg.epochs,
            train_images=result.summary.get("steps", 0) * tcfg.batch_size,
            dir=self.rel_dir(run_dir),
            run_dir=str(run_dir.resolve()),
            host=socket.gethostname(),
            evaluation=evaluation,
            train=result.summary,
            eval=metrics,
            reused=done_before and fresh,
            config=tcfg.to_dict(),
        )
        self.runs[name] = entry
        return entry

    def _evaluate(self, run_dir: Path, kind: str) -> tuple[dict[str, float], bool]:
        """Evaluate `run_dir` (`full` or `selection`), reusing a stored evaluation with the same
        options made after the run finished. Returns (metrics, reused)."""
        ecfg = self.eval_config(kind)
        key = {k: v for k, v in vars(ecfg).items() if k != "log"}
        key = json.loads(json.dumps(key))  # tuples → lists, as stored
        stored_path = run_dir / f"eval_{kind}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stored = json.loads(stored_path.read_text())
            if (
                stored["options"] == key
                and stored_path.stat().st_mtime >= (run_dir / "DONE").stat().st_mtime
            ):
                return stored["metrics"], True
        metrics = evaluate_run(run_dir, ecfg)
        atomic_write_json(stored_path, {"options": key, "metrics": metrics})
        self.eval_s[kind] = metrics[keys.EVAL_TIME]
        return metrics, False

    # ------------------------------------------------------------------ stages
    def pending(self) -> list[tuple[str, int, int, str]]:
        """The runs this preset will train: (name, epochs, images per epoch, evaluation)."""
        c, n = self.cfg, self.n_train
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
        plan = halving.rungs(
            c.trial_epochs, trial_n, c.halving_eta, c.tuned_epochs, c.halving_rungs
        )
        count = len(c.decades) + 2 * c.refine
        for rung in plan:
            images = rung.limit_train or n
            out += [(f"r{rung.index}_{i}", rung.epochs, images, "selection") for i in range(count)]
            count = halving.promoted_count(count, c.halving_eta)
        out[-1] = (out[-1][0], out[-1][1], out[-1][2], "full")
        return out

    def open_queue(self) -> SearchQueue:
        """The β search's study (refused if that name holds another definition); this host's
        dead trials of an earlier, killed run are queued again at once."""
        url = self.placement.storage or default_storage_url(self.root, SEARCH_DB)
        queue = open_search(self.cfg, url, self.placement.name)
        lost = queue.requeue_dead_local_trials()
        if lost:
            self.say(f"queued again the trials of a stopped run: {', '.join(map(str, lost))}")
        if self.placement.workers > 1:  # started now, so they are ready when the search is
            from vaelab.study.worker import LocalWorkers

            self.local_workers = LocalWorkers.start(queue, self.placement)
        return queue

    def run(self) -> StudyResult:
        queue = self.open_queue()  # before any work: a refused study trains nothing
        try:
            return self._stages(queue)
        except BaseException:
            self._stop_workers()
            raise

    def _stages(self, queue: SearchQueue) -> StudyResult:
        c = self.cfg
        t0 = time.perf_counter()
        device = resolve_device(c.device)
        fig_dir = self.root / "figures"
        arrays = load_arrays(c.dataset, c.data_dir)
        x_tr, _ = split_arrays(arrays, "train")
        self.n_train = min(len(x_tr), c.limit_train or len(x_tr))
        plan = self.pending()

        with self.timed("data", "data overview", plan):
            data, baselines = self._data_overview(arrays, fig_dir)
        with self.timed("ae", "auto-encoder", plan):
            ae = self.ensure_run("ae", self.cfg.train_config("ae", 0.0, c.ae_epochs), "ae")
        with self.timed("extremes", "VAE at β = 0 and β = 10", plan):
            for b, name in ((0.0, "vae_beta0"), (10.0, "vae_beta10")):
                self.ensure_run(name, self.cfg.train_config("vae", b, c.extreme_epochs), "extremes")
        with self.timed("search", f"β search ({c.search})", plan):
            search = self.search(queue)
            trials = {b: self.runs[search.trial_run(b)].eval for b in search.trials}
            self._tradeoff_figures(trials, search.chosen_beta, ae.eval, fig_dir)
        with self.timed("tuned", f"tuned VAE (β = {search.chosen_beta:g})", []):
            tuned = self._tuned(search)
            code_stats = self._code_stats(["ae", tuned.name], device)
        with self.timed("interpolation", "interpolations AE vs tuned VAE", []):
            interp = self._interpolations(tuned.name, device, fig_dir)
        with self.timed("representation", "representation usefulness", []):
            representation = {
                name: {k: r.eval[k] for k in (keys.PROBE_LINEAR, keys.PROBE_KNN)}
                for name, r in self.runs.items()
                if r.evaluation == "full"
            }
        return StudyResult(
            config=c,
            env=Environment(**environment(device)),
            data=data,
            baselines=baselines,
            runs=self.runs,
            search=search,
            tuned=tuned.name,
            code_stats=code_stats,
            interpolation=interp,
            representation=representation,
            classifier=self._classifier_info(device),
            stage_time_s=self.stage_time,
            stage_order=[k for k in STAGES if k in self.stage_time],
            run_order=list(self.runs),
            compute_time_s=sum(
                r.train.get("train_time_s", 0) + r.eval[keys.EVAL_TIME] for r in self.runs.values()
            ),
            train_images=sum(r.train_images for r in self.runs.values()),
            wall_time_s=time.perf_counter() - t0,
        )

    def _classifier_info(self, device: torch.device) -> ClassifierInfo:
        c = self.cfg
        meta = clf.reference_classifier(c.dataset, c.data_dir, variant=c.classifier, device=device)
        return ClassifierInfo(
            variant=meta[1]["variant"],
            test_accuracy=meta[1]["test_accuracy"],
            epochs=meta[1]["epochs"],
            train_images=meta[1]["train_images"],
        )

    def _data_overview(self, arrays: dict, fig_dir: Path) -> tuple[DataInfo, Baselines]:
        c = self.cfg
        x_tr, _ = split_arrays(arrays, "train")
        strip = torch.from_numpy(x_tr[:16]).float() / 255.0
        figures.image_grid(
            fig_dir / "data_strip.png", strip, f"{c.dataset}: the first 16 training images", nrow=16
        )
        test_images, _ = split_arrays(arrays, "test")
        x_te = torch.from_numpy(test_images[: c.eval_limit]).double() / 255.0
        mean_img = torch.from_numpy(x_tr[: self.n_train]).double().mean(0) / 255.0
        mean_image_sse = float((x_te - mean_img).pow(2).flatten(1).sum(1).mean())
        baselines = Baselines(mean_image_sse=mean_image_sse, prior_norm=math.sqrt(c.latent_dim))
        return parse(DataInfo, data_info(c.dataset, c.data_dir), "the dataset's info"), baselines

    # ------------------------------------------------------------------ the β search
    def plan(self) -> list[halving.Rung]:
        c = self.cfg
        return halving.rungs(
            c.trial_epochs, c.trial_limit_train, c.halving_eta, c.tuned_epochs, c.halving_rungs
        )

    def _trial_run(self, beta: float, rung: int) -> tuple[str, TrainConfig, str]:
        """(run name, train config, evaluation kind) of β-search trial (β, rung)."""
        c = self.cfg
        if c.search == "grid":
            tcfg = self.cfg.train_config("vae", beta, c.trial_epochs, trial=True)
            return beta_name(beta), tcfg, c.trial_evaluation
        r = self.plan()[rung]
        tcfg = self.cfg.train_config("vae", beta, r.epochs, r.limit_train, trial=True)
        return beta_name(beta, rung), tcfg, "selection"

    def trial_dir(self, beta: float, rung: int) -> Path:
        return self.root / "runs" / self._trial_run(beta, rung)[0]

    def search_trial(self, beta: float, rung: int, run_dir: Path) -> tuple[dict[str, Any], float]:
        """Train and evaluate one β-search trial in `run_dir`; returns its run entry (as JSON,
        for the study storage) and selection loss. Runs in the coordinator and in workers (a
        `TrialRunner`)."""
        name, tcfg, evaluation = self._trial_run(beta, rung)
        entry = self.ensure_run(name, tcfg, "search", evaluation, run_dir)
        return to_json(entry), self._loss(entry.eval)

    def _accept(self, trial: FrozenTrial, recorded: bool) -> str:
        """Take a finished trial's run entry from the study storage into this study."""
        entry = parse(RunEntry, trial.user_attrs[RUN_ATTR], f"trial {trial.number}'s run entry")
        entry.dir = self.rel_dir(entry.run_dir)
        if recorded:
            entry.reused = True
            self.say(
                f"  reusing {entry.name} ({entry.model}, β={entry.beta:g}, {entry.epochs} "
                "epochs; recorded in the study storage)"
            )
        elif trial.user_attrs.get("pid") != os.getpid() or entry.host != socket.gethostname():
            wall = trial.user_attrs.get("wall_time_s", 0.0)
            who = f"{entry.host} pid {trial.user_attrs.get('pid')}"
            self.say(f"  {entry.name} trained by {who} ({wall:.0f} s)")
        self.runs.pop(entry.name, None)  # batch order in study.json, whoever finished first
        self.runs[entry.name] = entry
        return entry.name

    def search(self, queue: SearchQueue) -> SearchResult:
        """The β search (vaelab.study.halving.run_search) with trials queued in `queue` and
        trained as study runs, here and in any workers."""
        c = self.cfg
        plan = self.plan()
        names: dict[tuple[float, int], str] = {}

        def evaluate(betas: list[float], rung: int) -> dict[float, float]:
            points = [(b, rung) for b in betas]
            recorded = queue.status(points)[0]
            complete = evaluate_batch(queue, points, self)
            for p in points:
                names[p] = self._accept(complete[p], p in recorded)
            return {b: float(complete[b, rung].value) for b in betas}

        self.say(f"  β-search trials: study '{queue.name}' in {queue.url}")
        outcome = self._decide(queue, evaluate)
        rung0 = {b: names[b, 0] for b in outcome.rungs[0].losses}
        choice = select_beta(
            {b: self.runs[n].eval for b, n in rung0.items()},
            c.min_recon_accuracy,
            c.min_class_entropy,
        )
        reason = choice.reason
        if c.search == "halving":
            reason = self._halving_reason(outcome.rungs[-1], plan, outcome.chosen)
        return SearchResult(
            method=c.search,
            trials=sorted(rung0),
            trial_runs={f"{b:g}": n for b, n in sorted(rung0.items())},
            log=outcome.log,
            rungs=[
                RungRecord(
                    rung=r.index,
                    epochs=plan[r.index].epochs if c.search == "halving" else c.trial_epochs,
                    limit_train=min(self.n_train, plan[r.index].limit_train or self.n_train)
                    if c.search == "halving"
                    else self.n_train,
                    selection_loss={f"{b:g}": v for b, v in sorted(r.losses.items())},
                    runs={f"{b:g}": names[b, r.index] for b in sorted(r.losses)},
                    promoted=r.promoted,
                )
                for r in outcome.rungs
            ],
            chosen_beta=outcome.chosen,
            eligible=choice.eligible,
            reason=reason,
            fallback=choice.fallback,
            best_decade=outcome.best_decade,
            rule=halving_rule_text(c) if c.search == "halving" else "",
            storage=queue.url,
            study_name=queue.name,
        )

    def _decide(self, queue: SearchQueue, evaluate: halving.Evaluate) -> halving.SearchOutcome:
        """run_search, then the search is marked finished and the local workers stop."""
        c = self.cfg
        try:
            with self._search_threads():
                outcome = halving.run_search(
                    c.decades,
                    evaluate,
                    eta=c.halving_eta,
                    n_rungs=c.halving_rungs if c.search == "halving" else 1,
                    max_extensions=c.max_extensions,
                    refine=c.refine,
                )
            queue.mark_finished()  # workers anywhere stop when the queue is empty
        except BaseException:
            self._stop_workers()
            raise
        if self.local_workers is not None:
            bad = self.local_workers.join()
            if bad:
                codes = ", ".join(map(str, bad))
                self.say(f"  {len(bad)} local workers ended with exit codes {codes}; see logs/")
        return outcome

    @contextmanager
    def _search_threads(self) -> Iterator[None]:
        """torch threads of this process while it trains β-search trials beside local
        workers: cores / workers unless --threads says otherwise."""
        threads = self.placement.threads_each()
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _stop_workers(self) -> None:
        if self.local_workers is not None:
            self.local_workers.stop()

    @contextmanager
    def logging_to(self, path: Path) -> Iterator[None]:
        """This study's lines also go to `path` while the block runs."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        try:
            yield
        finally:
            self.log.removeHandler(handler)
            handler.close()

    def _loss(self, metrics: dict[str, float]) -> float:
        c = self.cfg
        return halving.selection_loss(metrics, c.min_recon_accuracy, c.min_class_entropy)

    def _halving_reason(
        self, last: halving.RungResult, plan: list[halving.Rung], chosen: float
    ) -> str:
        loss = last.losses[chosen]
        what = (
            f"its sample Fréchet distance {loss:.2f} was the lowest among the eligible β"
            if loss < halving.INELIGIBLE_PENALTY
            else "no β met both thresholds there, so the lowest sample Fréchet distance "
            f"({loss - halving.INELIGIBLE_PENALTY:.2f}) decided"
        )
        rung = plan[last.index]
        images = min(self.n_train, rung.limit_train or self.n_train)
        return (
            f"β = {chosen:g} won the last search rung (rung {last.index}: {rung.epochs} epochs "
            f"on {images} images; β {_betas(sorted(last.losses))}): {what}"
        )

    def _tuned(self, search: SearchResult) -> RunEntry:
        """The chosen β with the preset's full budget and the full evaluation."""
        c, beta = self.cfg, search.chosen_beta
        if c.search == "grid":
            name = search.trial_run(beta)
            return self.ensure_run(
                name, self.cfg.train_config("vae", beta, c.trial_epochs), "tuned"
            )
        tcfg = self.cfg.train_config("vae", beta, c.tuned_epochs)
        return self.ensure_run(f"beta_{beta:g}_tuned", tcfg, "tuned")

    # ------------------------------------------------------------------ helpers
    def _tradeoff_figures(
        self,
        trials: dict[float, dict[str, float]],
        chosen: float,
        ae: dict[str, float],
        fig_dir: Path,
    ) -> None:
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
            f"active units (of {self.cfg.latent_dim})",
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

    def _test_images(self, device: torch.device, labels: bool = False) -> Any:
        """The test images every run is evaluated on (x in [0, 1]), with labels if asked."""
        c = self.cfg
        x, _, y = load_eval_data(
            c.dataset, "test", data_dir=c.data_dir, limit=c.eval_limit, seed=c.seed, device=device
        )
        return (x, y) if labels else x

    @torch.no_grad()
    def _code_stats(self, names: list[str], device: torch.device) -> dict[str, CodeStats]:
        """Where each model's test codes live, compared with the N(0, I) prior."""
        from vaelab.checkpoint import load_model

        out = {}
        for name in names:
            model, _ = load_model(self.root / "runs" / name, "best", device)
            x = self._test_images(device)
            mu, q = decode.codes(model, x)
            seen = mu  # the codes the decoder was trained on: μ for the AE, z ~ q(z|x) for a VAE
            if q is not None:  # drawn on the CPU: the same codes whatever the device
                seed = stream_seed(self.cfg.seed, "study_code_noise")
                seen = q.to("cpu").sample(torch.Generator().manual_seed(seed))
            std = mu.double().std(0)
            # Off-manifold test: distance from a prior sample to its nearest test code, relative
            # to the distance from a held-out test code to its nearest other test code.
            g = torch.Generator().manual_seed(stream_seed(self.cfg.seed, "study_prior"))
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

    def _interpolations(
        self, tuned: str, device: torch.device, fig_dir: Path
    ) -> dict[str, InterpolationSummary]:
        from vaelab.checkpoint import load_model

        models = {
            "AE": load_model(self.root / "runs" / "ae", "best", device)[0],
            f"VAE β={self.runs[tuned].beta:g}": load_model(
                self.root / "runs" / tuned, "best", device
            )[0],
        }
        x, y = self._test_images(device, labels=True)
        classifier, _ = clf.reference_classifier(
            self.cfg.dataset, self.cfg.data_dir, variant=self.cfg.classifier, device=device
        )
        curves: dict[str, list[np.ndarray]] = {}
        summary: dict[str, InterpolationSummary] = {}
        ecfg = EvalConfig()  # the evaluation's pairs and steps, so figures match eval.json
        for a, b in ecfg.pairs:
            pairs = pick_pairs(y, a, b, ecfg.n_pairs, self.cfg.seed)
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
                f"{a}→{b}: AE vs tuned VAE, lerp and slerp "
                f"(start, {ecfg.steps} decoded codes, end)",
            )
        stacked = {k: np.stack(v) for k, v in curves.items()}
        figures.confidence_curves(
            fig_dir / "interp_confidence_compare.png",
            stacked,
            "Classifier confidence along paths: AE vs tuned VAE",
        )
        for name, label in (("ae", "AE"), (tuned, f"VAE β={self.runs[tuned].beta:g}")):
            for mode in ("lerp", "slerp"):
                summary[f"{label} {mode}"] = InterpolationSummary.from_eval(
                    self.runs[name].eval, mode
                )
        return summary


def run_study(cfg: StudyConfig, placement: SearchPlacement | None = None) -> dict[str, Any]:
    """Run (or finish) the study in cfg.out and write study.json, report.md and report.html.
    `placement`: where the β search's trials are queued and how many local processes train
    them (default: sqlite:///STUDY_DIR/search.db, this process alone)."""
    from vaelab.study.report import write_report

    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".lock", blocking=False):
        study = Study(cfg, placement)
        with study.logging_to(root / "study.log"):
            result = study.run()
            atomic_write_json(root / "study.json", result.to_dict())  # the report cites this file
            write_report(root, load_study(root / "study.json"))
            study.say(f"study done in {result.wall_time_s / 60:.1f} min: {root / 'report.html'}")
    return result.to_dict()
