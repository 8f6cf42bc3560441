"""The β search's trials as an Optuna study: the work queue and the record.

Every trial (β, rung) is one Optuna trial with β and rung as fixed parameters; its value is the
trial's selection loss (`halving.selection_loss`), its user attributes hold the study's run entry
(train summary, selection-evaluation metrics), run directory, host, pid and wall time, so the
coordinator (`vaelab study`) needs no access to the trial's files. The coordinator queues a batch
(`submit`), works on queued trials like any worker until the batch is complete, then decides
(`halving.promote`); workers (`vaelab study worker`, or `--workers K`) run queued trials until the
coordinator marks the search finished.

The storage machinery (heartbeats, retry of a dead worker's trial, the ask lock, definition
checks) is the sweep's: `vaelab.tune.storage`.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import FrozenTrial, Trial, TrialState

from vaelab.config import SETTINGS, UNHASHED, StudyConfig
from vaelab.errors import ConfigError, RunError, VaelabError
from vaelab.fsutil import json_sha256
from vaelab.schema import read
from vaelab.train.loop import TrainingInterrupted
from vaelab.tune.storage import (
    DEFINITION_ATTR,
    Heartbeat,
    ask_lock,
    load_existing_study,
    open_storage,
    open_study,
    redact,
    requeue,
    trial_id,
)
from vaelab.tune.sweep_config import Direction

SEARCH_DB = "search.db"
POINT_ATTR = "vaelab:point"  # [β, rung]: set when queued, kept by retries
RUN_ATTR = "vaelab:run"  # the study's run entry of a finished trial
FINISHED_ATTR = "vaelab:search_finished"  # study attribute: workers may stop
SETTINGS_ATTR = "vaelab:settings"  # study attribute: the unhashed settings workers need
# β and rung are fixed parameters, never sampled; the bounds only name their distributions.
BETA_BOUNDS, RUNG_BOUNDS = (1e-12, 1e12), (0, 1000)
MAX_FAILURES_IN_A_ROW = 3

Point = tuple[float, int]  # (β, rung)


class TrialRunner(Protocol):
    """What trains a trial: the study's β search (`vaelab.study.search.BetaSearch`), in the
    coordinator and in every worker."""

    def trial_dir(self, beta: float, rung: int) -> Path:
        """Where this process trains trial (β, rung) unless a retry resumes elsewhere."""
        ...

    def search_trial(self, beta: float, rung: int, run_dir: Path) -> tuple[dict[str, Any], float]:
        """Train and evaluate the trial in `run_dir`; (its run entry, its selection loss)."""
        ...


@dataclass
class SearchDefinition:
    """The β search's definition for `open_study`: every StudyConfig field that changes a
    trial's result (the trial schedules, the evaluation, the thresholds, dataset and seed), one
    hash each, so a refusal names the fields that differ."""

    cfg: StudyConfig
    name: str
    directions: list[Direction] = field(default_factory=lambda: ["minimize"])

    def definition(self) -> dict[str, Any]:
        return {k: v for k, v in self.cfg.to_dict().items() if k not in UNHASHED}

    def definition_hashes(self) -> dict[str, str]:
        return {k: json_sha256(v)[:16] for k, v in self.definition().items()}


def default_name(cfg: StudyConfig) -> str:
    """`<preset>-<8 hex digits of the definition>`: one study per definition in a storage."""
    return f"{cfg.preset}-{json_sha256(SearchDefinition(cfg, '').definition())[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass
class Job:
    """A trial this process took from the queue."""

    trial: Trial
    beta: float
    rung: int
    resume_dir: Path | None
    """The original run directory of a retried trial, when it is on this host."""


class SearchQueue:
    """One β search's Optuna study, its storage and the settings of its heartbeats."""

    def __init__(self, study: optuna.Study, storage: RDBStorage, cfg: StudyConfig) -> None:
        self.study, self.storage, self.cfg = study, storage, cfg
        self.name = study.study_name
        self.url = redact(storage.url)
        # Short: a batch waits this long after its last trial, and rung-0 trials of a small
        # preset take seconds. A poll is one small query (and the ask lock).
        self.poll_s = min(float(cfg.heartbeat_interval), 0.5)

    # ------------------------------------------------------------------ state
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

    def submit(self, points: list[Point]) -> dict[Point, FrozenTrial]:
        """Queue every point without a complete, queued or running trial; returns the points
        already complete (reused, not trained again)."""
        with ask_lock(self.storage, self.name):
            by_point = self._by_point()
            complete = {}
            for b, r in points:
                trials = by_point.get((b, r), [])
                done = [t for t in trials if t.state == TrialState.COMPLETE]
                if done:
                    complete[b, r] = done[-1]
                elif not any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
                    self.study.enqueue_trial(
                        {"beta": b, "rung": r}, user_attrs={POINT_ATTR: [b, r]}
                    )
        return complete

    def finished(self) -> bool:
        return bool(self.study.user_attrs.get(FINISHED_ATTR))

    def mark_finished(self) -> None:
        self.study.set_user_attr(FINISHED_ATTR, True)

    # ------------------------------------------------------------------ taking work
    def next_job(self) -> Job | None:
        """A queued trial, now RUNNING here, or None if none is queued. A dead worker's trial
        (no heartbeat for the grace period) is failed and queued again first."""
        with ask_lock(self.storage, self.name):
            fail_stale_trials(self.study)
            if not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None  # ask() would sample a new trial: the queue is empty
            trial = self.study.ask()  # the oldest queued trial
            tid = trial_id(self.storage, self.name, trial.number)
            # A first beat at once: a RUNNING trial that never beat is never found stale.
            self.storage.record_heartbeat(tid)
            before = dict(trial.user_attrs)  # a retry carries its original's host and run_dir
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            point = before.get(POINT_ATTR)
            if point is None:  # not queued by a coordinator: nothing to train
                self.study.tell(trial, state=TrialState.FAIL)
                return None
            beta = trial.suggest_float("beta", *BETA_BOUNDS, log=True)
            rung = trial.suggest_int("rung", *RUNG_BOUNDS)
        original = before.get("run_dir")
        resume_dir = None
        here = before.get("host") == socket.gethostname()
        if original and here and (Path(original) / "config.json").is_file():
            resume_dir = Path(original)
        return Job(trial, beta, rung, resume_dir)

    def requeue_dead_local_trials(self) -> list[int]:
        """Fail and queue again at once the RUNNING trials of processes of this host that are
        gone (a killed `vaelab study` re-run), instead of after the grace period."""
        host, numbers = socket.gethostname(), []
        with ask_lock(self.storage, self.name):
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                pid = t.user_attrs.get("pid")
                if not isinstance(pid, int) or t.user_attrs.get("host") != host:
                    continue  # another host's trial (its processes are not ours to see)
                if pid != os.getpid() and not _pid_alive(pid):
                    requeue(self.study, self.storage, t.number, self.cfg.max_retry, "worker lost")
                    numbers.append(t.number)
        return numbers

    def run_job(self, job: Job, runner: TrialRunner, reraise: bool) -> TrialState:
        """Train and evaluate one queued trial under heartbeats and record it. Interrupted
        (Ctrl-C, SIGTERM): the trial is queued again and the interruption raised. A failure is
        recorded on the trial; `reraise` raises it too (the coordinator stops, as it always did)."""
        tid = trial_id(self.storage, self.name, job.trial.number)
        t0 = time.time()
        run_dir = job.resume_dir or runner.trial_dir(job.beta, job.rung)
        # Recorded first: a retry of this trial resumes here if it runs on this host.
        job.trial.set_user_attr("run_dir", str(run_dir.resolve()))
        with Heartbeat(self.storage, tid, self.cfg.heartbeat_interval):
            try:
                entry, loss = runner.search_trial(job.beta, job.rung, run_dir)
            except (KeyboardInterrupt, SystemExit, TrainingInterrupted) as e:
                cause = "a signal" if isinstance(e, TrainingInterrupted) else type(e).__name__
                with ask_lock(self.storage, self.name):  # failed and queued again at once
                    why = f"interrupted by {cause}"
                    requeue(self.study, self.storage, job.trial, self.cfg.max_retry, why)
                raise
            except Exception as e:
                why = str(e) if isinstance(e, VaelabError) else f"{type(e).__name__}: {e}"
                job.trial.set_user_attr("error", why)
                job.trial.set_user_attr("wall_time_s", time.time() - t0)
                self.study.tell(job.trial, state=TrialState.FAIL)
                if reraise:
                    raise
                return TrialState.FAIL
            job.trial.set_user_attr("wall_time_s", time.time() - t0)
            job.trial.set_user_attr(RUN_ATTR, entry)
            # Optuna stores ±inf; a NaN would fail the trial (the loss maps NaN FD to inf).
            self.study.tell(job.trial, loss if not math.isnan(loss) else math.inf)
        return TrialState.COMPLETE


def open_search(cfg: StudyConfig, url: str, name: str | None) -> SearchQueue:
    """The coordinator's queue: create the study or continue the one of that name, refusing
    one with another definition."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say more
    storage = open_storage(url, cfg)
    study = open_study(storage, SearchDefinition(cfg, name or default_name(cfg)))
    study.set_user_attr(SETTINGS_ATTR, {k: getattr(cfg, k) for k in SETTINGS})
    return SearchQueue(study, storage, cfg)


def join_search(
    url: str, name: str | None, out: str, device: str, data_dir: str | None
) -> SearchQueue:
    """A worker's queue: the study's definition comes from the storage, not from flags."""
    existing = load_existing_study(url, name)
    definition = existing.user_attrs.get(DEFINITION_ATTR)
    settings = existing.user_attrs.get(SETTINGS_ATTR)
    if definition is None or settings is None:
        raise ConfigError(
            f"study '{existing.study_name}' in {redact(url)} is not a vaelab β search; "
            "pass the --name the coordinator printed"
        )
    values = {**definition, **settings, "out": out, "device": device, "data_dir": data_dir}
    cfg = read(
        StudyConfig,
        values,
        source=f"study '{existing.study_name}' in {redact(url)}",
        what="study option",
        fix="it was defined by another vaelab version: run the coordinator's version here",
    ).validate()
    storage = open_storage(url, cfg)
    study = optuna.load_study(study_name=existing.study_name, storage=storage)
    return SearchQueue(study, storage, cfg)


def evaluate_batch(
    queue: SearchQueue, points: list[Point], runner: TrialRunner
) -> dict[Point, FrozenTrial]:
    """The coordinator's side of one batch: queue what is missing, work on queued trials until
    every point is complete, return each point's complete trial. A point whose trials all failed
    (no retry left) stops the study with the trial's error."""
    queue.submit(points)
    while True:
        complete, failed = queue.status(points)
        if failed:
            (b, r), why = next(iter(failed.items()))
            raise RunError(
                f"β-search trial β = {b:g} (rung {r}) failed: {why}; fix it and run the same "
                "command again"
            )
        if len(complete) == len(points):
            return complete
        job = queue.next_job()
        if job is not None:
            queue.run_job(job, runner, reraise=True)
        else:  # the rest run in other workers: wait, in case one of them dies
            time.sleep(queue.poll_s)


def work(queue: SearchQueue, runner: TrialRunner, say: Callable[[str], None]) -> int:
    """A worker's loop: run queued trials until the coordinator marks the search finished;
    returns how many ran here."""
    ran, failures = 0, 0
    while True:
        job = queue.next_job()
        if job is None:
            if queue.finished():
                return ran
            time.sleep(queue.poll_s)
            continue
        ran += 1
        state = queue.run_job(job, runner, reraise=False)
        failures = failures + 1 if state == TrialState.FAIL else 0
        if state == TrialState.FAIL:
            error = queue.study.trials[job.trial.number].user_attrs.get("error", "?")
            say(f"trial β = {job.beta:g} (rung {job.rung}) failed: {error}")
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise RunError(f"{failures} β-search trials in a row failed here (last: {error})")
