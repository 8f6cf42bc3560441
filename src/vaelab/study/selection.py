"""Choosing β from measurements: the criterion is explicit and written into the report."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Choice:
    beta: float
    eligible: list[float]
    reason: str
    fallback: bool


def criterion_text(min_recon_accuracy: float, min_class_entropy: float) -> str:
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
    eligible = sorted(
        b
        for b, m in trials.items()
        if m["recon/classifier_accuracy"] >= min_recon_accuracy
        and m["samples/class_entropy"] >= min_class_entropy
        and math.isfinite(m["samples/fd"])
    )
    pool = eligible or sorted(trials)
    best = min(pool, key=lambda b: trials[b]["samples/fd"])
    fd = trials[best]["samples/fd"]
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
