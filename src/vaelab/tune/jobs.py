"""One job loop for every Optuna trial vaelab trains (a sweep's, the β search's): take a trial
under the ask lock, beat its heart while it trains, record it complete, pruned or failed, queue
it again when interrupted, stop a worker whose trials keep failing; and `--workers K` processes."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import Trial, TrialState

from vaelab.config import Heartbeats
from vaelab.errors import RunError, VaelabError
from vaelab.train.loop import TrainingInterrupted
from vaelab.tune.storage import ask_lock, heartbeat, redact

MAX_FAILURES_IN_A_ROW = 3
Verdict = Literal["ask", "wait", "done"]
S = TypeVar("S")


@dataclass
class Queue:
    """An Optuna study whose trials workers take, its storage and its heartbeat settings."""

    study: optuna.Study
    storage: RDBStorage
    settings: Heartbeats
    poll_s: float
    """Seconds between looks at the queue while there is nothing to take."""

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def url(self) -> str:
        return redact(self.storage.url)

    def trial_id(self, number: int) -> int:
        """The storage's id of trial `number` (Optuna's public API speaks in numbers)."""
        study_id = self.storage.get_study_id_from_name(self.name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def requeue(self, number: int, why: str) -> None:
        """Fail a RUNNING trial (`why` in its `error` attribute) and queue it again with its
        parameters, like a dead worker's, so the next worker resumes it."""
        tid = self.trial_id(number)
        self.storage.set_trial_user_attr(tid, "error", why)
        self.study.tell(number, state=TrialState.FAIL)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=self.settings.max_retry)
        retry(self.study, self.storage.get_trial(tid))


@dataclass
class Taken:
    """A trial this process took, RUNNING here."""

    trial: Trial
    tid: int
    origin: int | None
    """The number of the trial this one retries (None: a first try)."""
    resume_dir: Path | None
    """The original's run folder, when this is a retry and that folder is on this host."""


class Job(Protocol):
    """One kind of trial, what the loop cannot know: `fix` ends the error line of a worker whose
    trials keep failing; `verdict` (under the ask lock) says ask for a trial now, wait or stop;
    `title` names a trial in log lines; `fresh_dir` is where this process trains one that does
    not resume its original's folder; `run` trains and evaluates it there, records what it
    measured in its user attributes and returns its objective value(s), or raises
    optuna.TrialPruned."""

    fix: str

    def verdict(self, study: optuna.Study) -> Verdict: ...

    def title(self, trial: Trial) -> str: ...

    def fresh_dir(self, taken: Taken) -> Path: ...

    def run(self, taken: Taken, run_dir: Path) -> float | Sequence[float]: ...

    def say(self, msg: str) -> None: ...


def take(queue: Queue, job: Job) -> Taken | Verdict:
    """A trial, now RUNNING here, or the job's verdict ("wait", "done") when there is none."""
    with ask_lock(queue.storage, queue.name):
        fail_stale_trials(queue.study)  # a dead worker's trial: failed, queued again first
        verdict = job.verdict(queue.study)
        if verdict != "ask":
            return verdict
        trial = queue.study.ask()  # a queued (retried) trial first
        tid = queue.trial_id(trial.number)
        # A first beat at once: a RUNNING trial that never beat is never found stale.
        queue.storage.record_heartbeat(tid)
        before = queue.storage.get_trial(tid)  # a retry carries its original's host, run_dir
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
    # A retry resumes in its original's run folder when that is on this host and holds a run
    # (whichever --out it was started in); else it trains in a fresh folder of this process.
    run_dir, resume_dir = before.user_attrs.get("run_dir"), None
    here = before.user_attrs.get("host") == socket.gethostname()
    if isinstance(run_dir, str) and here and (Path(run_dir) / "config.json").is_file():
        resume_dir = Path(run_dir)
    origin = RetryHeartbeatStaleTrialCallback.retried_trial_number(before)
    return Taken(trial, tid, origin, resume_dir)


def run_trial(queue: Queue, job: Job, taken: Taken, reraise: bool = False) -> TrialState:
    """Train and evaluate one taken trial under heartbeats and record it. A failure is recorded
    on the trial (`reraise` raises it too); interrupted (Ctrl-C, SIGTERM), the trial is queued
    again and the interruption raised."""
    trial, t0 = taken.trial, time.time()
    state, values, said, failure = TrialState.COMPLETE, None, "", None
    with heartbeat(queue.storage, taken.tid, queue.settings.heartbeat_interval):
        try:
            run_dir = taken.resume_dir or job.fresh_dir(taken)
            # Recorded first: a retry of this trial resumes here if it runs on this host.
            trial.set_user_attr("run_dir", str(run_dir.resolve()))
            values = job.run(taken, run_dir)
        except optuna.TrialPruned as e:
            state, said = TrialState.PRUNED, f"pruned: {e}"
        except (KeyboardInterrupt, SystemExit, TrainingInterrupted) as e:
            cause = "a signal" if isinstance(e, TrainingInterrupted) else type(e).__name__
            # Under the ask lock, as every retry is queued: no worker may see the trial failed
            # and not yet queued again (the β search would call its point failed for good,
            # a sweep would sample a new trial in its place).
            why = f"interrupted by {cause}"
            with ask_lock(queue.storage, queue.name):
                queue.requeue(trial.number, why)
            job.say(f"{job.title(trial)} {why}; queued again (a re-run resumes it)")
            raise
        except Exception as e:  # a trial's own failure must not stop the others
            why = str(e) if isinstance(e, VaelabError) else f"{type(e).__name__}: {e}"
            trial.set_user_attr("error", why)
            state, said, failure = TrialState.FAIL, f"failed: {why}", e
        trial.set_user_attr("wall_time_s", time.time() - t0)
        queue.study.tell(trial, values, state)
    if failure is not None and reraise:
        raise failure
    if said:
        job.say(f"{job.title(trial)} {said}")
    return state


def work(
    queue: Queue, job: Job, until: Callable[[], bool] = lambda: False, reraise: bool = False
) -> int:
    """Take and run trials until `until()` or the job's verdict is "done"; returns how many
    ran here. MAX_FAILURES_IN_A_ROW failed trials stop this worker (a broken config or machine
    would otherwise fail every trial of the study)."""
    ran, failures = 0, 0
    while not until():
        taken = take(queue, job)
        if taken == "done":
            break
        if not isinstance(taken, Taken):  # the rest run elsewhere: wait, in case one dies
            time.sleep(queue.poll_s)
            continue
        ran += 1
        state = run_trial(queue, job, taken, reraise)
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            last = taken.trial.user_attrs.get("error", "?")
            raise RunError(
                f"{failures} trials in a row failed in this worker (last: {last}); {job.fix}"
            )
    return ran


@contextlib.contextmanager
def worker_log(log: Log, index: int, out: Path, threads: int | None) -> Iterator[int]:
    """A worker process on `threads` torch threads (None: PyTorch's default, all cores), its
    lines tagged `[worker <index> <host>-<pid>]` and kept in OUT/logs/worker-<host>-<pid>.log;
    yields its torch threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    tag = f"{socket.gethostname()}-{os.getpid()}"
    log.prefix = f"[worker {index} {tag}] "
    with log.to_file(out / "logs" / f"worker-{tag}.log"):
        yield torch.get_num_threads()


def requeue_dead_local_trials(queue: Queue) -> list[int]:
    """Fail and queue again at once the RUNNING trials of processes of this host that are gone
    (a killed command run again), instead of after the grace period."""
    host, numbers = socket.gethostname(), []
    with ask_lock(queue.storage, queue.name):
        for t in queue.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = t.user_attrs.get("pid")
            if not isinstance(pid, int) or t.user_attrs.get("host") != host:
                continue  # another host's trial (its processes are not ours to see)
            try:
                os.kill(pid, 0)  # signal 0 only asks whether the process is there
            except ProcessLookupError:
                queue.requeue(t.number, "worker lost")
                numbers.append(t.number)
            except PermissionError:  # someone else's process: alive
                pass
    return numbers


class Log:
    """One process's lines: each on stderr (after `prefix`, a worker's tag) and, while
    `to_file(path)` is active, in that file with a timestamp (`file.debug` lines only there).
    Pickled (into a worker process), it arrives new: a process's lines are its own."""

    def __reduce__(self) -> tuple[type[Log], tuple[()]]:
        return Log, ()

    def __init__(self) -> None:
        self.prefix = ""
        self.file = logging.Logger("vaelab", logging.DEBUG)  # this object's own, unregistered

    def say(self, msg: str) -> None:
        print(f"{self.prefix}{msg}", file=sys.stderr, flush=True)
        self.file.info(msg)

    @contextlib.contextmanager
    def to_file(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.file.addHandler(handler)
        try:
            yield
        finally:
            self.file.removeHandler(handler)
            handler.close()


class LocalWorkers:
    """`--workers K`: worker processes on this machine, each running `target(spec)` (a
    module-level function: it is pickled). A worker's error is one `vaelab: error: worker <i>:
    ...` line and its exit code."""

    def __init__(self, target: Callable[[S], object], specs: list[S], first: int = 0) -> None:
        # spawn, not fork: a forked child would inherit the parent's SQLAlchemy connections
        # and torch thread pools.
        ctx = multiprocessing.get_context("spawn")
        self.procs = [
            ctx.Process(target=_worker_main, args=(target, s, i), name=f"vaelab-worker-{i}")
            for i, s in enumerate(specs, start=first)
        ]
        for p in self.procs:
            p.start()

    def join(self) -> list[int]:
        """Wait for them; the exit codes of those that failed. On Ctrl-C, which reached every
        worker of the terminal's process group, wait while each saves and queues its trial."""
        try:
            for p in self.procs:
                p.join()
        except KeyboardInterrupt:
            self.stop()
            raise
        return [p.exitcode or 0 for p in self.procs if p.exitcode != 0]

    def stop(self) -> None:
        """The command stopped (interrupted or failed). After Ctrl-C they saw the same signal
        and are queueing their trials again: give them time; then SIGTERM, which does the same
        (a training run checkpoints, its trial is queued again)."""
        for p in self.procs:
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
                p.join()


def _worker_main(target: Callable[[S], object], spec: S, index: int) -> None:
    try:
        target(spec)
    except VaelabError as e:
        if e.exit_code == 130:  # interrupted: the worker log says what was queued again
            sys.exit(130)
        print(f"vaelab: error: worker {index}: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
