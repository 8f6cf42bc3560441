"""Choosing β from measurements: the criterion is explicit and written into the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vaelab.evaluate.keys import SAMPLES_FD
from vaelab.tune.halving import INELIGIBLE_PENALTY, selection_loss


@dataclass
class Choice:
    beta: float
    eligible: list[float]
    reason: str
    fallback: bool


UNLABELLED_CRITERION = (
    "these images have no labels, so no β can be checked for recognisable reconstructions or "
    "class coverage: every β is eligible, and the one whose prior samples have the lowest "
    "Fréchet distance to the test set in the label-free features (`samples/fd`: a LeNet "
    "trained to predict the pixels) is chosen"
)


def criterion_text(
    min_recon_accuracy: float, min_class_entropy: float, labelled: bool = True
) -> str:
    if not labelled:
        return UNLABELLED_CRITERION
    return (
        f"a β is eligible when the reference classifier still recognises at least "
        f"{min_recon_accuracy:.0%} of its test reconstructions (`recon/classifier_accuracy`: "
        f"reconstructions stay sharp and faithful) and its prior samples cover the classes "
        f"(`samples/class_entropy` ≥ {min_class_entropy:.2f} nats, ln 10 ≈ 2.30 being uniform); "
        "among eligible β, the one whose prior samples have the lowest Fréchet distance to the "
        "test set (`samples/fd`: clear, realistic samples) is chosen"
    )


def select_beta(
    trials: dict[float, dict[str, float]], min_recon_accuracy: float, min_class_entropy: float
) -> Choice:
    """Apply the criterion to {β: eval metrics}; if no β is eligible, fall back to the lowest
    sample FD overall and say so."""
    if not trials:
        raise ValueError("no β trials to choose from")
    loss = {b: selection_loss(m, min_recon_accuracy, min_class_entropy) for b, m in trials.items()}
    eligible = sorted(b for b, v in loss.items() if v < INELIGIBLE_PENALTY)
    best = min(loss, key=lambda b: (loss[b], b))
    fd = trials[best][SAMPLES_FD]
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
