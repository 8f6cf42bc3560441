"""The β search's trials as an Optuna study, the work queue and the record: each trial (β, rung)
has β and rung as fixed parameters, its selection loss as value and the study's run entry (and
host, pid, wall time) as user attributes, so the coordinator needs no access to its files.
The coordinator queues a batch and works on it like any worker until it is complete; workers
run queued trials until the coordinator marks the search finished."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from vaelab.config import Heartbeats
from vaelab.errors import ConfigError, RunError
from vaelab.tune import jobs
from vaelab.tune.storage import (
    DEFINITION_ATTR,
    ask_lock,
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
C = TypeVar("C", bound=Heartbeats)


class Trainer(Protocol):
    """What trains a trial (`vaelab.study.search.BetaSearch`): `trial_dir` is where this process
    trains (β, rung) unless a retry resumes elsewhere; `search_trial` trains and evaluates it in
    `run_dir` and returns (its run entry, its selection loss)."""

    def trial_dir(self, beta: float, rung: int) -> Path: ...

    def search_trial(
        self, beta: float, rung: int, run_dir: Path
    ) -> tuple[dict[str, Any], float]: ...

    def say(self, msg: str) -> None: ...


class BetaQueue(jobs.Queue):
    """One β search's Optuna study, its storage and the settings of its heartbeats."""

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

    def mark_finished(self) -> None:
        self.study.set_user_attr(FINISHED_ATTR, True)


@dataclass
class BetaJob:
    """β-search trials for the job loop: only queued ones are taken; a worker stops once the
    search is marked finished, the coordinator when its batch is complete."""

    trainer: Trainer
    queue: BetaQueue
    stop_when_finished: bool
    fix: str = "see this worker's log and fix the cause"

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
        return self.trainer.trial_dir(*self.point(taken.trial))

    def run(self, taken: jobs.Taken, run_dir: Path) -> float:
        entry, loss = self.trainer.search_trial(*self.point(taken.trial), run_dir)
        taken.trial.set_user_attr(RUN_ATTR, entry)
        # Optuna stores ±inf; a NaN would fail the trial (the loss maps NaN FD to inf).
        return loss if not math.isnan(loss) else math.inf

    def say(self, msg: str) -> None:
        self.trainer.say(msg)


def open_search(
    url: str,
    cfg: Heartbeats,
    name: str,
    definition: dict[str, Any],
    settings: dict[str, Any],
) -> BetaQueue:
    """The coordinator's queue: create the study or continue the one of that name, refusing
    one with another definition (one hash per setting, so a refusal names the settings that
    differ). `settings`: what workers need besides the definition."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say more
    storage = open_storage(url, cfg)
    study = open_study(storage, name, definition, ["minimize"])
    study.set_user_attr(SETTINGS_ATTR, settings)
    return _queue(study, storage, cfg)


def _queue(study: optuna.Study, storage: Any, cfg: Heartbeats) -> BetaQueue:
    # A short poll (one small query): a batch waits this long after its last trial.
    return BetaQueue(study, storage, cfg, poll_s=min(float(cfg.heartbeat_interval), 0.5))


def join_search(
    url: str, name: str | None, build: Callable[[dict[str, Any]], C]
) -> tuple[BetaQueue, C]:
    """A worker's queue and config: the search's definition and settings come from the storage,
    not from flags; `build` turns them into the study's config (heartbeat settings included)."""
    existing = load_existing_study(url, name)
    definition = existing.user_attrs.get(DEFINITION_ATTR)
    settings = existing.user_attrs.get(SETTINGS_ATTR)
    if definition is None or settings is None:
        raise ConfigError(
            f"study '{existing.study_name}' in {redact(url)} is not a vaelab β search; "
            "pass the --name the coordinator printed"
        )
    cfg = build({**definition, **settings})
    storage = open_storage(url, cfg)
    study = optuna.load_study(study_name=existing.study_name, storage=storage)
    return _queue(study, storage, cfg), cfg


def evaluate_batch(
    queue: BetaQueue, points: list[Point], trainer: Trainer
) -> dict[Point, FrozenTrial]:
    """The coordinator's side of one batch: queue what is missing, work on queued trials until
    every point is complete; a point whose trials all failed stops the study with its error."""

    def complete() -> bool:
        done, failed = queue.status(points)
        if failed:
            (b, r), why = next(iter(failed.items()))
            raise RunError(
                f"β-search trial β = {b:g} (rung {r}) failed: {why}; fix it and run the same "
                "command again"
            )
        return len(done) == len(points)

    queue.submit(points)
    jobs.work(queue, BetaJob(trainer, queue, stop_when_finished=False), complete, reraise=True)
    return queue.status(points)[0]


def work(queue: BetaQueue, trainer: Trainer) -> int:
    """A worker's loop: run queued trials until the coordinator marks the search finished;
    returns how many ran here."""
    return jobs.work(queue, BetaJob(trainer, queue, stop_when_finished=True))
