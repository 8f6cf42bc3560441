"""Optuna samplers and pruners built from a `SweepConfig`."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from vaelab.config import TrainConfig
from vaelab.tune.sweep_config import SweepConfig


class GridCycleSampler(BaseSampler):
    """Grid parameters take the least-tried point of their product; the rest come from `base`.

    Stateless: the point is chosen from the trials in the storage, so workers on several machines
    share one balance (two workers asking at the same instant may pick the same point).
    A retried trial keeps its parameters (Optuna reuses them), hence its grid point.
    """

    def __init__(self, base: BaseSampler, grid: dict[str, list[Any]]) -> None:
        self._base = base
        self._names = list(grid)
        self._points = list(itertools.product(*grid.values()))

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self._base.infer_relative_search_space(study, trial)
        return {k: v for k, v in space.items() if k not in self._names}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        if name not in self._names:
            return self._base.sample_independent(study, trial, name, dist)
        return self._points[self._least_tried(study, trial)][self._names.index(name)]

    def _least_tried(self, study: Study, trial: FrozenTrial) -> int:
        counts: Counter[int] = Counter()
        for t in study.get_trials(deepcopy=False):
            if t.number != trial.number and t.state != TrialState.FAIL:
                counts.update(i for i in range(len(self._points)) if self._matches(t.params, i))
        # grid values this trial already took (earlier suggest calls) narrow the candidates
        fits = [i for i in range(len(self._points)) if self._matches(trial.params, i)]
        return min(fits, key=lambda i: (counts[i], i))

    def _matches(self, params: dict[str, Any], i: int) -> bool:
        point = self._points[i]
        return all(params[n] == point[j] for j, n in enumerate(self._names) if n in params)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        self._base.after_trial(study, trial, state, values)


class PerTrialSeedSampler(BaseSampler):
    """Seeds a fresh `factory(seed + trial number)` sampler for every trial.

    One seed per worker would make two workers (or a re-run) propose the same trials; the trial
    number is unique in the study, so proposals differ everywhere and a trial's draw depends only
    on the seed, its number and the study's history (TPE reads that from the storage anyway).
    """

    def __init__(self, factory: Callable[[int | None], BaseSampler], seed: int) -> None:
        self._factory, self._seed = factory, seed
        self._base = factory(seed)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base = self._factory(self._seed + trial.number)
        self._base.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        return self._base.sample_independent(study, trial, name, dist)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._base.after_trial(study, trial, state, values)


def make_sampler(cfg: SweepConfig) -> BaseSampler:
    def factory(seed: int | None) -> BaseSampler:
        if cfg.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    base = factory(None) if cfg.seed is None else PerTrialSeedSampler(factory, cfg.seed)
    return GridCycleSampler(base, cfg.grid) if cfg.grid else base


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    p = cfg.pruner
    if p.kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
        )
    if p.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor
        )
    if p.kind == "hyperband":
        epochs = cfg.train.get("epochs", TrainConfig().epochs)
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource="auto" if "epochs" in {s.name for s in cfg.space} else epochs,
            reduction_factor=p.reduction_factor,
        )
    return optuna.pruners.NopPruner()
