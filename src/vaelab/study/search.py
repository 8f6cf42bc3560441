"""The study's β-search stage. Its trials (β, rung) are an Optuna study, the work queue and the
record: β and rung are fixed parameters, the selection loss the value, the study's run entry (and
host, pid, wall time) user attributes, so the coordinator needs no access to a worker's files.
The coordinator queues a batch and works on it like any worker until it is complete; workers
(`run_worker`) run queued trials until it marks the search finished. vaelab.tune.halving decides,
and the search is recorded as the study's `SearchResult`."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, Trial, TrialState

from vaelab.config import SETTINGS, UNHASHED, StudyConfig, TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import label_classes, split_arrays
from vaelab.errors import ConfigError, RunError
from vaelab.fsutil import json_sha256
from vaelab.study.runs import RunBook, beta_name
from vaelab.study.schema import Evaluation, RunEntry, RungRecord, SearchResult, parse, to_json
from vaelab.train.preflight import threads_per_process
from vaelab.tune import halving, jobs
from vaelab.tune.storage import (
    DEFINITION_ATTR,
    ask_lock,
    default_storage_url,
    load_existing_study,
    open_storage,
    open_study,
    redact,
)

SEARCH_DB = "search.db"
POINT_ATTR = "vaelab:point"  # [β, rung]: set when queued, kept by retries
RUN_ATTR = "vaelab:run"  # the study's run entry of a finished trial
FINISHED_ATTR = "vaelab:search_finished"  # study attribute: workers may stop
SETTINGS_ATTR = "vaelab:settings"  # study attribute: the unhashed settings workers need
# β and rung are fixed parameters, never sampled; the bounds only name their distributions.
BETA_BOUNDS, RUNG_BOUNDS = (1e-12, 1e12), (0, 1000)

Point = tuple[float, int]  # (β, rung)


class BetaQueue(jobs.Queue):
    """One β search's Optuna study, its storage and the settings of its heartbeats."""

    @classmethod
    def of(cls, study: optuna.Study, storage: Any, cfg: StudyConfig) -> BetaQueue:
        # A short poll (one small query): a batch waits this long after its last trial.
        return cls(study, storage, cfg, poll_s=min(float(cfg.heartbeat_interval), 0.5))

    def _by_point(self) -> dict[Point, list[FrozenTrial]]:
        out: dict[Point, list[FrozenTrial]] = {}
        for t in self.study.get_trials(deepcopy=False):
            p = t.user_attrs.get(POINT_ATTR)
            if p is not None:
                out.setdefault((float(p[0]), int(p[1])), []).append(t)
        return out

    def status(self, points: list[Point]) -> tuple[dict[Point, FrozenTrial], dict[Point, str]]:
        """(complete trial of each finished point, error of each point that failed for good:
        no complete, no queued or running trial left). Under the ask lock, as every retry is
        queued (right after its original failed)."""
        with ask_lock(self.storage, self.name):
            by_point = self._by_point()
        complete, failed = {}, {}
        for p in points:
            trials = by_point.get(p, [])
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            if done:
                complete[p] = done[-1]
            elif trials and all(t.state == TrialState.FAIL for t in trials):
                failed[p] = str(trials[-1].user_attrs.get("error", "failed"))
        return complete, failed

    def submit(self, points: list[Point]) -> None:
        """Queue every point without a complete, queued or running trial."""
        with ask_lock(self.storage, self.name):
            by_point = self._by_point()
            for b, r in points:
                states = {t.state for t in by_point.get((b, r), [])}
                if not states & {TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING}:
                    self.study.enqueue_trial(
                        {"beta": b, "rung": r}, user_attrs={POINT_ATTR: [b, r]}
                    )

    def finished(self) -> bool:
        return bool(self.study.user_attrs.get(FINISHED_ATTR))


@dataclass
class BetaJob:
    """β-search trials for the job loop: only queued ones are taken; a worker stops once the
    search is marked finished, the coordinator when its batch is complete."""

    search: BetaSearch
    queue: BetaQueue
    stop_when_finished: bool
    fix: str = "see this worker's log and fix the cause"

    def say(self, msg: str) -> None:
        self.search.book.say(msg)

    def verdict(self, study: optuna.Study) -> jobs.Verdict:
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return "ask"  # ask() now takes the oldest queued trial, never samples one
        return "done" if self.stop_when_finished and self.queue.finished() else "wait"

    def title(self, trial: Trial) -> str:
        p = trial.params
        return f"trial β = {p['beta']:g} (rung {p['rung']})" if p else f"trial {trial.number}"

    def point(self, trial: Trial) -> Point:
        if POINT_ATTR not in trial.user_attrs:
            raise RunError(f"trial {trial.number} was not queued by a β-search coordinator")
        beta = trial.suggest_float("beta", *BETA_BOUNDS, log=True)
        return beta, trial.suggest_int("rung", *RUNG_BOUNDS)

    def fresh_dir(self, taken: jobs.Taken) -> Path:
        return self.search.book.root / "runs" / self.search.trial_run(*self.point(taken.trial))[0]

    def run(self, taken: jobs.Taken, run_dir: Path) -> float:
        """Train and evaluate the trial as a study run; its entry goes to the study storage."""
        name, tcfg, evaluation = self.search.trial_run(*self.point(taken.trial))
        entry = self.search.book.ensure_run(name, tcfg, "search", evaluation, run_dir)
        taken.trial.set_user_attr(RUN_ATTR, to_json(entry))
        # Optuna stores ±inf, not NaN: the loss maps a NaN FD to inf.
        return self.search.loss(entry)


LATER_OPTIONS = {"image_size": None, "color": None, "channels_last": False, "fused_adam": False}
"""Options added after vaelab 0.2, with the value that leaves them out of the definition: an
earlier study's hash, and so its storage, stays the same."""


def definition(cfg: StudyConfig, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(study name, every option that changes a trial's result); the name defaults to
    `<preset>-<8 hex digits of the definition>`, one study per definition in a storage."""
    parts = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in UNHASHED and not (k in LATER_OPTIONS and v == LATER_OPTIONS[k])
    }
    return name or f"{cfg.preset}-{json_sha256(parts)[:8]}", parts


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
    """torch threads of each of them during the search (None: cores / workers, as `vaelab
    sweep --workers` shares them; one process: PyTorch's default)."""


class BetaSearch:
    """The β search of the study whose runs `book` keeps, its trials placed by `placement`."""

    def __init__(self, book: RunBook, placement: SearchPlacement | None = None) -> None:
        self.book = book
        self.cfg = book.cfg
        self.placement = placement or SearchPlacement()
        self.local_workers: jobs.LocalWorkers | None = None

    @cached_property
    def min_class_entropy(self) -> float:
        """The class-entropy threshold for the classes of this data's train split."""
        _, y = split_arrays(load_arrays(*self.cfg.train.data_args), "train")
        return halving.class_entropy_threshold(self.cfg.min_class_entropy, label_classes(y))

    def loss(self, entry: RunEntry) -> float:
        """A trial's selection loss, from its run's evaluation."""
        th = self.cfg.min_recon_accuracy, self.min_class_entropy
        return halving.selection_loss(entry.eval, *th)

    # ------------------------------------------------------------------ one trial
    def plan(self) -> list[halving.Rung]:
        """The search's rungs; the grid search is one, every β on the whole train split."""
        c = self.cfg
        if c.search == "grid":
            return [halving.Rung(0, c.trial_epochs, None)]
        return halving.rungs(
            c.trial_epochs, c.trial_limit_train, c.halving_eta, c.tuned_epochs, c.halving_rungs
        )

    def trial_run(self, beta: float, rung: int) -> tuple[str, TrainConfig, Evaluation]:
        """(run name, train config, evaluation kind) of β-search trial (β, rung)."""
        c, r = self.cfg, self.plan()[rung]
        limit_train = r.limit_train or c.train.limit_train
        tcfg = c.run_config("vae", beta, r.epochs, trial=True, limit_train=limit_train)
        if c.search == "grid":
            return beta_name(beta), tcfg, c.trial_evaluation
        return beta_name(beta, rung), tcfg, "selection"

    def _accept(self, trial: FrozenTrial, recorded: bool) -> RunEntry:
        """Take a finished trial's run entry from the study storage into this study."""
        book = self.book
        entry = parse(
            RunEntry,
            trial.user_attrs[RUN_ATTR],
            f"trial {trial.number}'s run entry",
            "it was recorded by another vaelab version: pass --name NEW for a new β search",
        )
        entry.dir = book.rel_dir(entry.run_dir)
        if recorded:
            entry.reused = True
            book.say(
                f"  reusing {entry.name} ({entry.model}, β={entry.beta:g}, {entry.epochs} "
                "epochs; recorded in the study storage)"
            )
        elif trial.user_attrs.get("pid") != os.getpid() or entry.host != socket.gethostname():
            wall = trial.user_attrs.get("wall_time_s", 0.0)
            who = f"{entry.host} pid {trial.user_attrs.get('pid')}"
            book.say(f"  {entry.name} trained by {who} ({wall:.0f} s)")
        book.runs.pop(entry.name, None)  # batch order in study.json, whoever finished first
        book.runs[entry.name] = entry
        return entry

    # ------------------------------------------------------------------ the search
    def open_queue(self) -> BetaQueue:
        """The β search's study (another definition under that name is refused) with the settings
        workers need; opened before the study folder is made, so a refusal creates nothing."""
        url = self.placement.storage or default_storage_url(self.book.root, SEARCH_DB)
        storage = open_storage(url, self.cfg)
        study = open_study(storage, *definition(self.cfg, self.placement.name), ["minimize"])
        study.set_user_attr(SETTINGS_ATTR, {k: getattr(self.cfg, k) for k in SETTINGS})
        return BetaQueue.of(study, storage, self.cfg)

    def start(self, queue: BetaQueue) -> None:
        """This host's dead trials of an earlier, killed run are queued again at once; local
        workers start now, so they are ready when the search is."""
        lost = jobs.requeue_dead_local_trials(queue)
        if lost:
            self.book.say(f"queued again the trials of a stopped run: {', '.join(map(str, lost))}")
        p, c = self.placement, self.cfg
        if p.workers > 1:  # in the study folder, the storage URL with its password
            threads = threads_per_process(p.workers, p.threads)
            url, where = queue.storage.url, (c.out, c.train.device, c.train.data_dir)
            specs = [WorkerArgs(url, queue.name, *where, threads, i) for i in range(1, p.workers)]
            self.local_workers = jobs.LocalWorkers(run_worker, specs, first=1)

    def run(self, queue: BetaQueue) -> SearchResult:
        """The β search (vaelab.tune.halving.run_search) with trials queued in `queue` and
        trained as study runs, here and in any workers."""
        names: dict[Point, str] = {}
        job = BetaJob(self, queue, stop_when_finished=False)

        def evaluate(betas: list[float], rung: int) -> dict[float, float]:
            """The coordinator's side of one batch: queue what is missing, work on queued
            trials until every point is complete; a point whose trials all failed stops the
            study."""
            points = [(b, rung) for b in betas]
            recorded = queue.status(points)[0]

            def complete() -> bool:
                done, failed = queue.status(points)
                if failed:
                    (b, r), why = next(iter(failed.items()))
                    raise RunError(
                        f"β-search trial β = {b:g} (rung {r}) failed: {why}; fix it and run the "
                        "same command again"
                    )
                return len(done) == len(points)

            queue.submit(points)
            jobs.work(queue, job, complete, reraise=True)
            done = queue.status(points)[0]
            entries = {b: self._accept(done[b, rung], (b, rung) in recorded) for b in betas}
            names.update({(b, rung): e.name for b, e in entries.items()})
            return {b: self.loss(e) for b, e in entries.items()}  # the trials' values, recomputed

        self.book.say(f"  β-search trials: study '{queue.name}' in {queue.url}")
        return self.record(self._decide(queue, evaluate), names, queue.url, queue.name)

    def record(
        self, outcome: halving.SearchOutcome, names: dict[Point, str], url: str, name: str
    ) -> SearchResult:
        """The search as study.json records it; the choice, its eligible β and its fallback all
        come from the rung that decided (the last trained), so they describe one decision."""
        c, runs = self.cfg, self.book.runs
        decided = outcome.rungs[-1]
        at = {b: runs[names[b, decided.index]].eval for b in decided.losses}
        choice = halving.select_beta(at, c.min_recon_accuracy, self.min_class_entropy)
        rung0 = {b: names[b, 0] for b in outcome.rungs[0].losses}
        plan, n_train = self.plan(), self.book.n_train
        rungs = [
            RungRecord(
                rung=r.index,
                epochs=plan[r.index].epochs,
                limit_train=min(n_train, plan[r.index].limit_train or n_train),
                selection_loss={f"{b:g}": v for b, v in sorted(r.losses.items())},
                runs={f"{b:g}": names[b, r.index] for b in sorted(r.losses)},
                promoted=r.promoted,
            )
            for r in outcome.rungs
        ]
        halving_search = c.search == "halving"
        return SearchResult(
            method=c.search,
            trials=sorted(rung0),
            trial_runs={f"{b:g}": n for b, n in sorted(rung0.items())},
            log=outcome.log,
            rungs=rungs,
            chosen_beta=outcome.chosen,
            eligible=choice.eligible,
            reason=_halving_reason(rungs[-1], outcome.chosen) if halving_search else choice.reason,
            fallback=choice.fallback,
            best_decade=outcome.best_decade,
            rule=halving.halving_rule_text(c) if halving_search else "",
            storage=url,
            study_name=name,
        )

    def _decide(self, queue: BetaQueue, evaluate: halving.Evaluate) -> halving.SearchOutcome:
        """run_search (this process with cores / workers torch threads, unless --threads says
        otherwise), then the search is marked finished and the local workers stop."""
        c, before = self.cfg, torch.get_num_threads()
        try:
            threads = threads_per_process(self.placement.workers, self.placement.threads)
            torch.set_num_threads(threads or before)
            outcome = halving.run_search(
                c.decades,
                evaluate,
                eta=c.halving_eta,
                n_rungs=c.halving_rungs if c.search == "halving" else 1,
                max_extensions=c.max_extensions,
                refine=c.refine,
            )
            queue.study.set_user_attr(FINISHED_ATTR, True)  # workers anywhere stop when idle
        except BaseException:
            self.stop_workers()
            raise
        finally:
            torch.set_num_threads(before)
        bad = self.local_workers.join() if self.local_workers is not None else []
        if bad:
            codes = ", ".join(map(str, bad))
            self.book.say(f"  {len(bad)} local workers ended with exit codes {codes}; see logs/")
        return outcome

    def stop_workers(self) -> None:
        """Stop the local workers (the search was interrupted or failed)."""
        if self.local_workers is not None:
            self.local_workers.stop()


def _halving_reason(rung: RungRecord, chosen: float) -> str:
    loss = rung.selection_loss[f"{chosen:g}"]
    what = (
        f"its sample Fréchet distance {loss:.2f} was the lowest among the eligible β"
        if loss < halving.INELIGIBLE_PENALTY
        else "no β met both thresholds there, so the lowest sample Fréchet distance "
        f"({loss - halving.INELIGIBLE_PENALTY:.2f}) decided"
    )
    return (
        f"β = {chosen:g} won the last search rung (rung {rung.rung}: {rung.epochs} epochs "
        f"on {rung.limit_train} images; β {', '.join(rung.selection_loss)}): {what}"
    )


# ---- workers -----------------------------------------------------------------------------------
@dataclass
class WorkerArgs:
    """`vaelab study worker`: join a β search on any machine and train its queued trials into
    OUT/runs/beta_<β>_r<rung>/; the study's definition comes from the storage, not from flags."""

    storage: str
    """The study storage URL (with its password: workers connect with it)."""
    name: str | None
    """The study's name (None: the storage's only study)."""
    out: str
    """Directory of this worker's runs (runs/<name>/) and log (logs/)."""
    device: str = "auto"
    data_dir: str | None = None
    threads: int | None = None
    """torch threads (None: PyTorch's default, all cores)."""
    index: int = 0


def run_worker(args: WorkerArgs) -> int:
    """Work on the β search until the coordinator marks it finished (waiting while trials may
    still be queued); returns how many trials ran here."""
    existing = load_existing_study(args.storage, args.name)
    definition = existing.user_attrs.get(DEFINITION_ATTR)
    settings = existing.user_attrs.get(SETTINGS_ATTR)
    if definition is None or settings is None:
        raise ConfigError(
            f"study '{existing.study_name}' in {redact(args.storage)} is not a vaelab β search; "
            "pass the --name the coordinator printed"
        )
    # the coordinator's definition and settings, with this machine's folders and device
    here = {"out": args.out, "device": args.device, "data_dir": args.data_dir}
    cfg = StudyConfig.from_options(
        {**definition, **settings, **here},
        source="this β search's definition in its storage",
        fix="it was defined by another vaelab version: run the coordinator's version here",
    ).validate()
    storage = open_storage(args.storage, cfg)
    study = optuna.load_study(study_name=existing.study_name, storage=storage)
    queue, book = BetaQueue.of(study, storage, cfg), RunBook(cfg)
    with jobs.worker_log(book.log, args.index, Path(args.out), args.threads) as threads:
        book.say(f"joined β search '{queue.name}' in {queue.url} (torch threads {threads})")
        ran = jobs.work(queue, BetaJob(BetaSearch(book), queue, stop_when_finished=True))
        book.say(f"β search '{queue.name}' is finished; {ran} trials ran here")
    return ran
