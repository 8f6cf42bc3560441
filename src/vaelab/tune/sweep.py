"""`run_sweep`: open (or join) the study, then run K local workers until it has its trials; any
number of workers on any machines may work on one storage. `SweepJob` is what a sweep trial is
to the job loop (vaelab.tune.jobs); the sampler and pruner are built from the `SweepConfig`."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, Trial, TrialState

from vaelab.config import TrainConfig
from vaelab.errors import ConfigError, RunError, TrainingInterrupted
from vaelab.fsutil import atomic_write_json
from vaelab.train.preflight import check_processes, threads_per_process
from vaelab.tune import jobs
from vaelab.tune.storage import best_trials, default_storage_url, open_storage, open_study, redact
from vaelab.tune.sweep_config import ParamSpec, SweepConfig, validate


class SweepSampler(BaseSampler):
    """`factory`'s sampler, reseeded `seed + trial number` for every trial (when `seed` is set),
    with `grid` parameters taking the least-tried point of their product.

    Per-trial seeds: one seed per worker would make two workers (or a re-run) propose the same
    trials; the trial number is unique in the study, so a draw depends only on the seed, the number
    and the study's history. The grid point is chosen from the trials in the storage, so workers
    on several machines share one balance (two asking at the same instant may pick the same
    point); a retried trial keeps its parameters (Optuna reuses them), hence its point.
    """

    def __init__(
        self, factory: Callable[..., BaseSampler], seed: int | None, grid: dict[str, list]
    ) -> None:
        self._factory, self._seed, self._names = factory, seed, set(grid)
        self._base = factory(seed=seed)
        self._points = [dict(zip(grid, p, strict=True)) for p in itertools.product(*grid.values())]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._seed is not None:
            self._base = self._factory(seed=self._seed + trial.number)
        self._base.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self._base.infer_relative_search_space(study, trial)
        return {k: v for k, v in space.items() if k not in self._names}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, trial, space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        if name not in self._names:
            return self._base.sample_independent(study, trial, name, dist)
        counts: Counter[int] = Counter()
        for t in study.get_trials(deepcopy=False):
            if t.number != trial.number and t.state != TrialState.FAIL:
                counts.update(self._fits(t.params))
        # grid values this trial already took (earlier suggest calls) narrow the candidates
        least_tried = min(self._fits(trial.params), key=lambda i: (counts[i], i))
        return self._points[least_tried][name]

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def _fits(self, params: dict[str, Any]) -> list[int]:
        """The grid points that agree with `params` on every grid parameter it holds."""
        return [
            i
            for i, point in enumerate(self._points)
            if all(params[n] == v for n, v in point.items() if n in params)
        ]


def make_sampler(cfg: SweepConfig) -> BaseSampler:
    tpe = cfg.sampler == "tpe"
    factory = optuna.samplers.TPESampler if tpe else optuna.samplers.RandomSampler
    if cfg.seed is None and not cfg.grid:
        return factory()
    return SweepSampler(factory, cfg.seed, cfg.grid)


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    p = cfg.pruner
    rungs = {"min_resource": p.min_resource, "reduction_factor": p.reduction_factor}
    if p.kind == "median":
        return optuna.pruners.MedianPruner(p.n_startup_trials, p.n_warmup_steps)
    if p.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**rungs)
    if p.kind == "hyperband":
        max_resource = "auto" if cfg.fixed_epochs is None else cfg.fixed_epochs
        return optuna.pruners.HyperbandPruner(max_resource=max_resource, **rungs)
    return optuna.pruners.NopPruner()


INTERRUPTED = (
    "sweep interrupted; the running trials were checkpointed and queued again: run the same "
    "command to continue the study"
)


@dataclass
class SweepResult:
    name: str
    storage: str  # the URL without its password
    counts: dict[str, int]  # trials per state (COMPLETE, PRUNED, FAIL, ...)
    best: list[dict[str, Any]]
    """The best trial (one objective) or the Pareto front: number, values, params, run_dir."""


def resolve_trials(cfg: SweepConfig, trials: int | None) -> int:
    n = trials if trials is not None else cfg.trials
    if n is None and cfg.space and all(p.type == "grid" for p in cfg.space):
        n = math.prod(len(v) for v in cfg.grid.values())  # a pure grid: each point once
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
    """Run (or continue, or join) the sweep until its study has `trials` finished trials: runs in
    OUT/trials/<number>/, worker logs in OUT/logs/, the study in `storage` (default
    sqlite:///OUT/sweep.db); `workers` local processes share the cores unless `threads` says."""
    if name:
        cfg.name = name
    validate(cfg)  # a SweepConfig built in Python gets the checks a TOML file gets
    n_trials = resolve_trials(cfg, trials)
    check_processes("--workers", workers, threads)
    out = Path(out_dir).resolve()
    url = storage or default_storage_url(out)
    # Open the study first: a refused storage or study (other space) stops before any work.
    study = _open_queue(url, cfg).study
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", {**dataclasses.asdict(cfg), "storage": redact(url)})
    threads = threads_per_process(workers, threads)
    specs = [SweepJob(cfg, out, url, n_trials, threads, i) for i in range(workers)]
    bad: list[int] = []
    try:
        if workers == 1:
            work(specs[0])
        else:
            bad = jobs.LocalWorkers(work, specs).join()
    except TrainingInterrupted:
        raise TrainingInterrupted(INTERRUPTED) from None
    if bad and all(code == 130 for code in bad):
        raise TrainingInterrupted(INTERRUPTED)
    if bad:
        raise RunError(
            f"{len(bad)} of {workers} workers failed (exit codes {', '.join(map(str, bad))}); "
            f"see {out / 'logs'}; run the same command again to continue the study"
        )
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    best = [
        dict(number=t.number, values=t.values, params=t.params, run_dir=t.user_attrs.get("run_dir"))
        for t in best_trials(study)
    ]
    return SweepResult(study.study_name, redact(url), dict(counts), best)


def _open_queue(url: str, cfg: SweepConfig) -> jobs.Queue:
    """The sweep's study, for the job loop; another sweep's under its name is refused."""
    storage = open_storage(url, cfg)
    sampler, pruner = make_sampler(cfg), make_pruner(cfg)
    study = open_study(
        storage, cfg.name, cfg.definition(), cfg.directions, sampler=sampler, pruner=pruner
    )
    return jobs.Queue(study, storage, cfg, poll_s=min(cfg.heartbeat_interval, 5))


def work(job: SweepJob) -> int:
    """Run trials until the study has `job.trials` finished ones; returns how many ran here."""
    cfg, n, log = job.cfg, job.trials, job.log
    queue = _open_queue(job.storage_url, cfg)
    with jobs.worker_log(log, job.index, job.out_dir, job.threads) as threads:
        log.say(f"joined study '{cfg.name}' ({n} trials wanted, torch threads {threads})")
        ran = jobs.work(queue, job)
        log.say(f"study '{cfg.name}' has its {n} finished trials; {ran} ran here")
    return ran


@dataclass
class SweepJob:
    """One worker's sweep trials for the job loop (pickled into a `--workers` process): sampled
    (or queued retries), trained in OUT/trials/<n>/, until the study has `trials` finished ones
    (complete or pruned)."""

    cfg: SweepConfig
    out_dir: Path
    storage_url: str
    trials: int
    threads: int | None
    """torch threads of this worker (None: PyTorch's default, all cores)."""
    index: int
    log: jobs.Log = field(default_factory=jobs.Log, repr=False)

    def __post_init__(self) -> None:
        self.fix = f"see {self.out_dir / 'logs'} and fix the sweep config"
        self.say = self.log.say

    def verdict(self, study: optuna.Study) -> jobs.Verdict:
        n = Counter(t.state for t in study.get_trials(deepcopy=False))
        finished = n[TrialState.COMPLETE] + n[TrialState.PRUNED]
        if finished >= self.trials:
            return "done"
        return "wait" if finished + n[TrialState.RUNNING] >= self.trials else "ask"

    def title(self, trial: Trial) -> str:
        return f"trial {trial.number}"

    def fresh_dir(self, taken: jobs.Taken) -> Path:
        number = taken.trial.number if taken.origin is None else taken.origin
        return self.out_dir / "trials" / str(number)

    def run(self, taken: jobs.Taken, run_dir: Path) -> list[float]:
        from vaelab.evaluate import evaluate_run

        t0, trial, sweep = time.time(), taken.trial, self.cfg
        params = {p.name: _suggest(trial, p) for p in sweep.space}
        retry = f" (retry of trial {taken.origin})" if taken.origin is not None else ""
        self.say(f"trial {trial.number}{retry}: {params} in {run_dir}")
        cfg = self._train(trial, params, run_dir)
        ecfg, tag = sweep.eval_config(cfg.device), f"trial {trial.number}"
        metrics = evaluate_run(run_dir, ecfg, log=lambda m: self.log.file.debug(f"{tag}: {m}"))
        keys = [o.key for o in sweep.objectives]
        missing = [k for k in keys if k not in metrics]
        if missing:
            raise RunError(f"eval.json of {run_dir} has no {', '.join(missing)}")
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        values = [float(metrics[k]) for k in keys]
        shown = ", ".join(f"{k} = {v:.6g}" for k, v in zip(keys, values, strict=True))
        self.say(f"trial {trial.number} complete: {shown} ({time.time() - t0:.1f} s)")
        return values

    def _train(self, trial: Trial, params: dict[str, Any], run_dir: Path) -> TrainConfig:
        """Train the trial's run, reporting each epoch to the pruner; its config."""
        from vaelab.train.loop import train

        sweep, values = self.cfg, dict(params)
        if self.threads and "threads" not in sweep.train:
            values["threads"] = self.threads
        cfg = sweep.trial_config(values)
        pruned_at: list[tuple[int, float]] = []  # (epoch, metric) where the pruner stopped it
        metric = sweep.pruner.metric
        # Optuna's pruners read intermediate values in the study's direction: negate a
        # lower-is-better metric when the objective is maximised.
        sign = -1.0 if sweep.directions[0] == "maximize" else 1.0
        trial.set_user_attr("pruner_metric", metric if sign > 0 else f"-{metric}")

        def on_epoch_end(epoch: int, record: dict[str, float]) -> bool:
            if len(sweep.objectives) > 1:
                return False  # Optuna has no intermediate values (or pruning) for several
            trial.report(sign * record[metric], epoch)
            if trial.should_prune():
                pruned_at.append((epoch, record[metric]))
                return True
            return False

        # resume: a retry (or a re-run after Ctrl-C) continues from the run's last checkpoint
        resume = (run_dir / "config.json").is_file()
        result = train(cfg, run_dir, resume=resume, tensorboard=False, on_epoch_end=on_epoch_end)
        summary = result.summary.to_dict().items()
        numbers = {k: v for k, v in summary if isinstance(v, int | float) and type(v) is not bool}
        trial.set_user_attr("train/summary", numbers)
        if pruned_at:
            raise optuna.TrialPruned(
                f"{metric} {pruned_at[0][1]:.6g} after epoch {pruned_at[0][0]} "
                f"is hopeless by the {sweep.pruner.kind} pruner"
            )
        return cfg


def _suggest(trial: Trial, p: ParamSpec) -> Any:
    if p.type == "float":
        return trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)  # type: ignore[arg-type]
    if p.type == "int":
        return trial.suggest_int(p.name, p.low, p.high, log=p.log, step=p.step or 1)  # type: ignore[arg-type]
    return trial.suggest_categorical(p.name, p.choices)  # categorical, and grid (SweepSampler)
