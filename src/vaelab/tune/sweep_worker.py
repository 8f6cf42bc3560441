"""One sweep worker: ask the study for a trial, train and evaluate it as a normal run directory,
tell the result; until the study has its trials. Any number of workers, on any machines, may run
this against one storage."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import Trial, TrialState

from vaelab.errors import RunError, VaelabError
from vaelab.train.loop import TrainingInterrupted
from vaelab.tune.samplers import make_pruner, make_sampler
from vaelab.tune.storage import Heartbeat, ask_lock, open_storage, open_study, requeue, trial_id
from vaelab.tune.sweep_config import ParamSpec, SweepConfig

MAX_FAILURES_IN_A_ROW = 3


@dataclass
class WorkerSpec:
    cfg: SweepConfig
    out_dir: Path
    storage_url: str
    trials: int
    """Finished (complete + pruned) trials the study should end with."""
    threads: int | None = None
    """torch threads of this worker (None: PyTorch's default, all cores)."""
    index: int = 0


def trial_counts(study: optuna.Study) -> Counter[TrialState]:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def worker_logger(out_dir: Path, index: int) -> logging.Logger:
    """INFO lines to stderr and DIR/logs/worker-<host>-<pid>.log; DEBUG (the evaluation's
    progress) to the file only."""
    tag = f"{socket.gethostname()}-{os.getpid()}"
    log = logging.getLogger(f"vaelab.tune.sweep_worker.{tag}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for h in list(log.handlers):  # a second sweep in this process: fresh files, no duplicates
        log.removeHandler(h)
        h.close()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(out_dir / "logs" / f"worker-{tag}.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO)
    err.setFormatter(logging.Formatter(f"[worker {index} {tag}] %(message)s"))
    for h in (fh, err):
        log.addHandler(h)
    return log


def work(spec: WorkerSpec) -> int:
    """Run trials until the study has `spec.trials` finished ones; returns how many ran here."""
    import torch

    if spec.threads:
        torch.set_num_threads(spec.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own log lines say more
    log = worker_logger(spec.out_dir, spec.index)
    storage = open_storage(spec.storage_url, spec.cfg)
    study = open_study(storage, spec.cfg, make_sampler(spec.cfg), make_pruner(spec.cfg))
    log.info(
        "joined study '%s' (%d trials wanted, torch threads %d)",
        spec.cfg.name,
        spec.trials,
        torch.get_num_threads(),
    )
    ran, failures = 0, 0
    while True:
        trial, finished = _next_trial(study, storage, spec)
        if finished:
            break
        if trial is None:  # the rest are running elsewhere; wait in case one of them dies
            time.sleep(min(spec.cfg.heartbeat_interval, 5))
            continue
        ran += 1
        state = run_trial(study, storage, trial, spec, log)
        failures = failures + 1 if state == TrialState.FAIL else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            last = study.trials[trial.number].user_attrs.get("error", "?")
            raise RunError(
                f"{failures} trials in a row failed in this worker (last: {last}); see "
                f"{spec.out_dir / 'logs'} and fix the sweep config"
            )
    log.info("study '%s' has its %d finished trials; %d ran here", spec.cfg.name, spec.trials, ran)
    return ran


def _next_trial(
    study: optuna.Study, storage: RDBStorage, spec: WorkerSpec
) -> tuple[Trial | None, bool]:
    """(trial to run or None to wait, whether the study is finished)."""
    with ask_lock(storage, spec.cfg.name):
        fail_stale_trials(study)  # a dead worker's trial: failed, re-queued as WAITING
        n = trial_counts(study)
        finished = n[TrialState.COMPLETE] + n[TrialState.PRUNED]
        if finished >= spec.trials:
            return None, True
        if finished + n[TrialState.RUNNING] >= spec.trials:
            return None, False
        trial = study.ask()  # pops a WAITING (retried) trial first
        # A first beat at once: a RUNNING trial that never beat is never found stale.
        storage.record_heartbeat(trial_id(storage, spec.cfg.name, trial.number))
        return trial, False


def _suggest(trial: Trial, p: ParamSpec) -> Any:
    if p.type == "float":
        return trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)  # type: ignore[arg-type]
    if p.type == "int":
        return trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step or 1)  # type: ignore[arg-type]
    return trial.suggest_categorical(p.name, p.choices)  # categorical, and grid (GridCycleSampler)


def run_trial(
    study: optuna.Study,
    storage: RDBStorage,
    trial: Trial,
    spec: WorkerSpec,
    log: logging.Logger,
) -> TrialState:
    """Train + evaluate one trial in DIR/trials/<n>/ (a retry resumes its original's run dir)."""
    tid = trial_id(storage, spec.cfg.name, trial.number)
    frozen = storage.get_trial(tid)
    origin = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    run_dir = spec.out_dir / "trials" / str(trial.number if origin is None else origin)
    t0 = time.time()
    with Heartbeat(storage, tid, spec.cfg.heartbeat_interval):
        try:
            params = {p.name: _suggest(trial, p) for p in spec.cfg.space}
            retry = f" (retry of trial {origin})" if origin is not None else ""
            log.info("trial %d%s: %s in %s", trial.number, retry, params, run_dir)
            trial.set_user_attr("run_dir", str(run_dir.resolve()))
            trial.set_user_attr("host", socket.gethostname())
            values, metrics = _train_and_evaluate(trial, spec, params, run_dir, log)
        except optuna.TrialPruned as e:
            trial.set_user_attr("wall_time_s", time.time() - t0)
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned: %s", trial.number, e)
            return TrialState.PRUNED
        except (KeyboardInterrupt, SystemExit) as e:
            _requeue(study, storage, trial, spec, log, type(e).__name__)
            raise
        except TrainingInterrupted:  # SIGINT/SIGTERM: the run saved a checkpoint
            _requeue(study, storage, trial, spec, log, "a signal")
            raise
        except VaelabError as e:
            return _fail(study, trial, t0, log, str(e))
        except Exception as e:  # a trial's own failure must not stop the study
            return _fail(study, trial, t0, log, f"{type(e).__name__}: {e}")
        trial.set_user_attr("wall_time_s", time.time() - t0)
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        study.tell(trial, values)
    shown = ", ".join(
        f"{o.key} = {v:.6g}" for o, v in zip(spec.cfg.objectives, values, strict=True)
    )
    log.info("trial %d complete: %s (%.1f s)", trial.number, shown, time.time() - t0)
    return TrialState.COMPLETE


def _train_and_evaluate(
    trial: Trial,
    spec: WorkerSpec,
    params: dict[str, Any],
    run_dir: Path,
    log: logging.Logger,
) -> tuple[list[float], dict[str, float]]:
    from vaelab.evaluate import evaluate_run
    from vaelab.train.loop import train

    values = dict(params)
    if spec.threads and "threads" not in spec.cfg.train:
        values["threads"] = spec.threads
    cfg = spec.cfg.trial_config(values)
    pruned_at: list[tuple[int, float]] = []  # (epoch, metric) where the pruner stopped it

    metric = spec.cfg.pruner.metric
    # Optuna's pruners read intermediate values in the study's direction: negate a
    # lower-is-better metric when the objective is maximised.
    sign = -1.0 if spec.cfg.directions[0] == "maximize" else 1.0
    trial.set_user_attr("pruner_metric", metric if sign > 0 else f"-{metric}")

    def on_epoch_end(epoch: int, record: dict[str, float]) -> bool:
        if len(spec.cfg.objectives) > 1:
            return False  # Optuna has no intermediate values (or pruning) for several objectives
        trial.report(sign * record[metric], epoch)
        if trial.should_prune():
            pruned_at.append((epoch, record[metric]))
            return True
        return False

    # resume: a retry (or a re-run after Ctrl-C) continues from the run's last checkpoint
    resume = (run_dir / "config.json").is_file()
    result = train(cfg, run_dir, resume=resume, tensorboard=False, on_epoch_end=on_epoch_end)
    trial.set_user_attr(
        "train/summary", {k: v for k, v in result.summary.to_dict().items() if _num(v)}
    )
    if pruned_at:
        raise optuna.TrialPruned(
            f"{metric} {pruned_at[0][1]:.6g} after epoch {pruned_at[0][0]} "
            f"is hopeless by the {spec.cfg.pruner.kind} pruner"
        )
    ecfg = spec.cfg.eval_config(cfg.device)
    metrics = evaluate_run(run_dir, ecfg, log=lambda m: log.debug("trial %d: %s", trial.number, m))
    missing = [o.key for o in spec.cfg.objectives if o.key not in metrics]
    if missing:
        raise RunError(f"eval.json of {run_dir} has no {', '.join(missing)}")
    return [float(metrics[o.key]) for o in spec.cfg.objectives], metrics


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fail(
    study: optuna.Study, trial: Trial, t0: float, log: logging.Logger, why: str
) -> TrialState:
    trial.set_user_attr("error", why)
    trial.set_user_attr("wall_time_s", time.time() - t0)
    study.tell(trial, state=TrialState.FAIL)
    log.info("trial %d failed: %s", trial.number, why)
    return TrialState.FAIL


def _requeue(
    study: optuna.Study,
    storage: RDBStorage,
    trial: Trial,
    spec: WorkerSpec,
    log: logging.Logger,
    cause: str,
) -> None:
    """An interrupted trial is failed and queued again like a dead worker's, so the next run of
    the sweep resumes it from its checkpoint instead of abandoning it."""
    requeue(study, storage, trial, spec.cfg.max_retry, f"interrupted by {cause}")
    log.info("trial %d interrupted by %s; queued again (a re-run resumes it)", trial.number, cause)
