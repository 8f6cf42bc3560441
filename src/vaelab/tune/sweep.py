"""`run_sweep`: open (or join) the study, then run K local workers until it has its trials."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from vaelab.errors import ConfigError, RunError, VaelabError
from vaelab.fsutil import atomic_write_json
from vaelab.train.loop import TrainingInterrupted
from vaelab.train.preflight import check_processes, threads_per_process
from vaelab.tune.samplers import make_pruner, make_sampler
from vaelab.tune.storage import default_storage_url, open_storage, open_study, redact
from vaelab.tune.sweep_config import SweepConfig, validate
from vaelab.tune.sweep_worker import WorkerSpec, trial_counts, work

S = TypeVar("S")


class SweepInterrupted(RunError):
    exit_code = 130


INTERRUPTED = (
    "sweep interrupted; the running trials were checkpointed and queued again: run the same "
    "command to continue the study"
)


@dataclass
class SweepResult:
    name: str
    storage: str
    """The storage URL without its password."""
    counts: dict[str, int]
    """Trials per state (COMPLETE, PRUNED, FAIL, ...)."""
    best: list[dict[str, Any]]
    """The best trial (one objective) or the Pareto front: number, values, params, run_dir."""


def resolve_trials(cfg: SweepConfig, trials: int | None) -> int:
    n = trials if trials is not None else cfg.trials
    if n is None and cfg.space and all(p.type == "grid" for p in cfg.space):
        n = cfg.grid_size()  # a pure grid: each point once
    if n is None:
        raise ConfigError("how many trials? set trials = N in [sweep] or pass --trials N")
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"--trials must be >= 1, got {n!r}")
    return n


def run_sweep(
    cfg: SweepConfig,
    out_dir: str | Path,
    storage: str | None = None,
    name: str | None = None,
    trials: int | None = None,
    workers: int = 1,
    threads: int | None = None,
) -> SweepResult:
    """Run (or continue, or join) the sweep until its study has `trials` finished trials.

    Run directories go to OUT/trials/<number>/, worker logs to OUT/logs/. `storage` defaults to
    sqlite:///OUT/sweep.db; with a shared database URL, this call on several machines (each with
    its own OUT) works on one study. `workers` local processes share the cores evenly unless
    `threads` (torch threads per worker) says otherwise.
    """
    if name:
        cfg.name = name
    validate(cfg)  # a SweepConfig built in Python gets the checks a TOML file gets
    n_trials = resolve_trials(cfg, trials)
    check_processes("--workers", workers, threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the workers log each trial
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage_url(out)
    # Open the study here first: a refused study (other space) stops before any worker starts.
    study = open_study(open_storage(url, cfg), cfg, make_sampler(cfg), make_pruner(cfg))
    atomic_write_json(out / "sweep.json", {**cfg.to_dict(), "storage": redact(url)})
    threads = threads_per_process(workers, threads)
    specs = [WorkerSpec(cfg, out, url, n_trials, threads, i) for i in range(workers)]
    if workers == 1:
        try:
            work(specs[0])
        except TrainingInterrupted:
            raise SweepInterrupted(INTERRUPTED) from None
    else:
        _run_processes(specs)
    return summarise(study, redact(url))


def _run_processes(specs: list[WorkerSpec]) -> None:
    procs = start_workers(work, specs)
    wait_workers(procs, specs[0].out_dir / "logs", SweepInterrupted(INTERRUPTED))


def start_workers(target: Callable[[S], object], specs: list[S]) -> list[BaseProcess]:
    """One process per spec running `target(spec)` (a module-level function: it is pickled).
    A worker's error is one `vaelab: error: worker <i>: ...` line and its exit code."""
    # spawn, not fork: a forked child would inherit the parent's SQLAlchemy connections
    # and torch thread pools.
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = [
        ctx.Process(target=_worker_main, args=(target, s, i), name=f"vaelab-worker-{i}")
        for i, s in enumerate(specs)
    ]
    for p in procs:
        p.start()
    return procs


def wait_workers(procs: list[BaseProcess], log_dir: Path, interrupted: RunError) -> None:
    """Wait for the workers; raise `interrupted` if they were interrupted, RunError if any
    failed."""
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        # Ctrl-C reached every worker of the terminal's process group: each saves its trial
        # and queues it again; wait for them to do so.
        for p in procs:
            p.join()
        raise
    bad = [p for p in procs if p.exitcode != 0]
    if bad and all(p.exitcode == 130 for p in bad):
        raise interrupted
    if bad:
        raise RunError(
            f"{len(bad)} of {len(procs)} workers failed (exit codes "
            f"{', '.join(str(p.exitcode) for p in bad)}); see {log_dir}; "
            "run the same command again to continue the study"
        )


def _worker_main(target: Callable[[S], object], spec: S, index: int) -> None:
    import sys

    try:
        target(spec)
    except VaelabError as e:
        if e.exit_code == 130:  # interrupted: the worker log says what was queued again
            sys.exit(130)
        print(f"vaelab: error: worker {index}: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def summarise(study: Any, storage: str) -> SweepResult:
    counts = trial_counts(study)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    best_trials = (
        ([study.best_trial] if len(study.directions) == 1 else study.best_trials)
        if complete
        else []
    )
    best = [
        {
            "number": t.number,
            "values": t.values,
            "params": t.params,
            "run_dir": t.user_attrs.get("run_dir"),
        }
        for t in best_trials
    ]
    return SweepResult(
        name=study.study_name,
        storage=storage,
        counts={s.name: c for s, c in counts.items()},
        best=best,
    )
