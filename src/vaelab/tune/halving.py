"""Successive halving for the β search: every candidate gets a short budget, and only those that
can still win get more; the decisions are those of Optuna's `SuccessiveHalvingPruner` (checked
by tests/test_halving.py). Then the criterion that chooses β, as the report states it.

Selection loss (lower is better): an eligible β scores its sample Fréchet distance, an
ineligible one FD + `INELIGIBLE_PENALTY`, so it ranks after every eligible β and, when none is
eligible, the ranking falls back to FD alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaelab.evaluate import keys

# Larger than any classifier-feature Fréchet distance seen on MNIST-like data (those are < 1e4).
INELIGIBLE_PENALTY = 1e6


def class_entropy_threshold(min_class_entropy: float, classes: int) -> float:
    """`min_class_entropy` (set for ten classes, uniform: ln 10 nats) scaled to K classes as its
    share of the uniform ln K; ten return it as is (× ln 10 / ln 10 may round differently)."""
    if classes == 10:
        return min_class_entropy
    return min_class_entropy * math.log(max(classes, 1)) / math.log(10)


def selection_loss(
    metrics: dict[str, float], min_recon_accuracy: float, min_class_entropy: float
) -> float:
    """One number per trial: FD if the trial meets both thresholds, else FD + penalty."""
    fd = metrics[keys.SAMPLES_FD]
    if not math.isfinite(fd):
        return math.inf
    if keys.RECON_ACCURACY not in metrics:  # unlabelled data: no class readings to check
        return fd
    eligible = (
        metrics[keys.RECON_ACCURACY] >= min_recon_accuracy
        and metrics[keys.SAMPLES_CLASS_ENTROPY] >= min_class_entropy
    )
    return fd if eligible else fd + INELIGIBLE_PENALTY


def promoted_count(n: int, eta: int) -> int:
    """How many of n trials that finished a rung go on: ⌊n/η⌋, at least one (Optuna's rule)."""
    return max(1, n // eta)


def promote(losses: dict[float, float], eta: int) -> list[float]:
    """The ⌊n/η⌋ β of lowest selection loss (ties: the lower β); an infinite loss (non-finite FD)
    goes on only if all are infinite."""
    ranked = sorted(losses, key=lambda b: (losses[b], b))
    keep = ranked[: promoted_count(len(ranked), eta)]
    finite = [b for b in keep if math.isfinite(losses[b])]
    return finite or keep[:1]


@dataclass(frozen=True)
class Rung:
    """One rung of the search: every trial in it trains `epochs` epochs on `limit_train` images
    (None: the whole train split) with its own learning-rate schedule."""

    index: int
    epochs: int
    limit_train: int | None


def rungs(
    first_epochs: int, first_limit: int | None, eta: int, final_epochs: int, n_rungs: int
) -> list[Rung]:
    """Rung r trains first_epochs·η^r epochs on `first_limit` images; the last is the chosen β's
    full run (`final_epochs` on the whole train split)."""
    out = [Rung(r, first_epochs * eta**r, first_limit) for r in range(n_rungs - 1)]
    return [*out, Rung(n_rungs - 1, final_epochs, None)]


@dataclass
class RungResult:
    index: int
    losses: dict[float, float]
    promoted: list[float]


@dataclass
class SearchOutcome:
    chosen: float
    best_decade: float
    rungs: list[RungResult]
    log: list[str]


def _best(losses: dict[float, float]) -> float:
    return min(losses, key=lambda b: (losses[b], b))


Evaluate = Callable[[list[float], int], dict[float, float]]
"""`evaluate(betas, rung)`: each β's selection loss at that rung's budget."""


def run_search(
    decades: list[float],
    evaluate: Evaluate,
    *,
    eta: int,
    n_rungs: int,
    max_extensions: int,
    refine: bool,
) -> SearchOutcome:
    """The β search over batches (the decades, each extension, the refinement pair, each rung's
    promoted set), so workers run a batch in parallel and decisions depend only on the losses.
    The chosen β is the one promoted into the last rung (n_rungs=1: the best of rung 0, a grid
    search), whose full-budget run is the caller's."""
    losses: dict[float, float] = {}

    def run(betas: list[float]) -> None:
        todo = [b for b in betas if b not in losses]
        if todo:
            losses.update(_checked(evaluate, todo, 0))

    log = [f"decades {', '.join(f'{b:g}' for b in decades)}"]
    run(list(decades))
    for _ in range(max_extensions):
        best = _best(losses)
        more = next_decades(sorted(losses), best)
        if not more:
            break
        log.append(f"best β {best:g} on the edge: extended with {more[0]:g}")
        run(more)
    best_decade = _best(losses)
    if refine:
        refined = refinement(best_decade)
        log.append(f"best decade β {best_decade:g}: refined with {refined[0]:g}, {refined[1]:g}")
        run(refined)
    rungs = [RungResult(0, dict(losses), [])]
    for index in range(1, n_rungs):
        promoted = rungs[-1].promoted = promote(rungs[-1].losses, eta)
        log.append(f"rung {index - 1} → {index}: β {', '.join(f'{b:g}' for b in promoted)} go on")
        if index < n_rungs - 1:
            rungs.append(RungResult(index, _checked(evaluate, promoted, index), []))
    return SearchOutcome(_best(rungs[-1].losses), best_decade, rungs, log)


def _checked(evaluate: Evaluate, betas: list[float], rung: int) -> dict[float, float]:
    """The batch's losses in the batch's order (a caller's dict order must not matter)."""
    out = evaluate(list(betas), rung)
    missing = [b for b in betas if b not in out]
    if missing:
        raise ValueError(f"evaluate returned no loss for β {', '.join(f'{b:g}' for b in missing)}")
    return {b: out[b] for b in betas}


def next_decades(decades: list[float], best: float) -> list[float]:
    """Extend the grid by one decade on the side where the best β sits on the edge."""
    lo, hi = min(decades), max(decades)
    if best == lo:
        return [lo / 10]
    if best == hi:
        return [hi * 10]
    return []


def refinement(best: float) -> list[float]:
    """Half-decade neighbours of the best decade: best·10^(∓½), rounded to 3 significant digits."""
    return [float(f"{best * 10**-0.5:.3g}"), float(f"{best * 10**0.5:.3g}")]


# ---- choosing β: the criterion is explicit and written into the report ----------------------
@dataclass
class Choice:
    beta: float
    eligible: list[float]
    reason: str
    fallback: bool


def criterion_text(
    min_recon_accuracy: float, min_class_entropy: float, labelled: bool = True, classes: int = 10
) -> str:
    """The criterion in words; `min_class_entropy` as configured (for ten classes), scaled here
    to `classes` by class_entropy_threshold, whose rule is stated when it changes the value."""
    if not labelled:
        return (
            "these images have no labels, so no β can be checked for recognisable reconstructions "
            "or class coverage: every β is eligible, and the one whose prior samples have the "
            "lowest Fréchet distance to the test set in the label-free features (`samples/fd`: a "
            "LeNet trained to predict the pixels) is chosen"
        )
    threshold = class_entropy_threshold(min_class_entropy, classes)
    entropy = (
        f"{threshold:.2f} nats, ln 10 ≈ 2.30 being uniform"
        if classes == 10
        else f"{threshold:.2f} nats = {min_class_entropy:.2f} × ln {classes} / ln 10, the "
        f"setting's share of the uniform ln {classes} ≈ {math.log(max(classes, 1)):.2f} for "
        f"these {classes} classes"
    )
    return (
        f"a β is eligible when the reference classifier still recognises at least "
        f"{min_recon_accuracy:.0%} of its test reconstructions (`recon/classifier_accuracy`: "
        f"reconstructions stay sharp and faithful) and its prior samples cover the classes "
        f"(`samples/class_entropy` ≥ {entropy}); "
        "among eligible β, the one whose prior samples have the lowest Fréchet distance to the "
        "test set (`samples/fd`: clear, realistic samples) is chosen"
    )


def select_beta(
    trials: dict[float, dict[str, float]], min_recon_accuracy: float, min_class_entropy: float
) -> Choice:
    """The criterion applied to {β: eval metrics}; no β eligible: the lowest sample FD."""
    if not trials:
        raise ValueError("no β trials to choose from")
    loss = {b: selection_loss(m, min_recon_accuracy, min_class_entropy) for b, m in trials.items()}
    eligible = sorted(b for b, v in loss.items() if v < INELIGIBLE_PENALTY)
    best = _best(loss)
    fd = trials[best][keys.SAMPLES_FD]
    if eligible:
        reason = (
            f"β = {best:g} has the lowest sample Fréchet distance ({fd:.2f}) among the "
            f"{len(eligible)} eligible β ({', '.join(f'{b:g}' for b in eligible)})"
        )
    else:
        reason = (
            f"no β met both thresholds, so the criterion falls back to the lowest sample "
            f"Fréchet distance overall: β = {best:g} ({fd:.2f})"
        )
    return Choice(beta=best, eligible=eligible, reason=reason, fallback=not eligible)


def halving_rule_text(cfg: Any) -> str:
    """The successive-halving rule as the report states it (cfg: a StudyConfig)."""
    return (
        f"successive halving with η = {cfg.halving_eta}: rung 0 trains every candidate β for "
        f"{cfg.trial_epochs} epoch(s) on {cfg.trial_limit_train or 'all'} training images (the "
        "decades, extended while the best sits on an edge, then its half-decade neighbours); "
        f"each later rung trains the best ⌊n/{cfg.halving_eta}⌋ β of the rung before (at least "
        f"one) {cfg.halving_eta}× as many epochs; 'best' is the selection loss, the sample "
        "Fréchet distance of eligible β, ineligible β ranking after all eligible ones. The "
        f"winner then trains the full budget ({cfg.tuned_epochs} epochs on the whole train "
        "split) and gets the full evaluation. The same rule as Optuna's SuccessiveHalvingPruner."
    )
