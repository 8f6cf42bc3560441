"""A sweep's figures (PNG, matplotlib Agg): parameter vs objective, importance, learning curves."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from vaelab.fsutil import atomic_write_bytes


def _save(fig: plt.Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def param_vs_objective(
    path: Path, trials: list[FrozenTrial], params: list[str], index: int, label: str
) -> Path:
    """One panel per parameter: objective `index` of every complete trial against its value;
    categorical values sit at evenly spaced positions, log-scaled ones on a log axis."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    cols = min(3, len(params))
    rows = math.ceil(len(params) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, params, strict=False):
        have = [t for t in done if name in t.params]
        ys = [t.values[index] for t in have]
        dist = have[0].distributions[name] if have else None
        if isinstance(dist, CategoricalDistribution):
            choices = list(dist.choices)
            xs: list[Any] = [choices.index(t.params[name]) for t in have]
            ax.set_xticks(range(len(choices)), [str(c) for c in choices])
        else:
            xs = [t.params[name] for t in have]
            if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
                ax.set_xscale("log")
        ax.scatter(xs, ys, s=28, color="tab:blue")
        for x, y, t in zip(xs, ys, have, strict=True):
            ax.annotate(
                str(t.number), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xlabel(name)
        ax.set_ylabel(label)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params) :]:
        ax.axis("off")
    fig.suptitle(f"{label} of each complete trial (labels: trial numbers)")
    return _save(fig, path)


def importance_bars(path: Path, importances: dict[str, float], label: str) -> Path:
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="tab:orange")
    ax.set_xlabel(f"importance for {label} (PED-ANOVA, sums to 1)")
    ax.set_xlim(0, max(1.0, *importances.values()))
    return _save(fig, path)


def learning_curves(path: Path, trials: list[FrozenTrial], metric: str, sign: float = 1.0) -> Path:
    """The per-epoch metric each trial reported to the pruner (times `sign`, which undoes the
    negation of a maximised study); pruned trials dashed."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.get_cmap("tab10")
    for i, t in enumerate(t for t in trials if t.intermediate_values):
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED
        ax.plot(
            steps,
            [sign * t.intermediate_values[s] for s in steps],
            "--" if pruned else "-",
            marker="x" if pruned else "o",
            color=colours(i % 10),
            alpha=0.85,
            label=f"{t.number}{' pruned' if pruned else ''}",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"{metric} reported to the pruner, per trial")
    return _save(fig, path)
