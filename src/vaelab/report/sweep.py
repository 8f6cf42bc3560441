"""`vaelab sweep report`: the trials as a table, the best trial, and figures, as markdown, an
offline HTML page (relative image paths, no scripts; vaelab.report.render) and a CSV, all in one
folder."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
from matplotlib.ticker import MaxNLocator
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from vaelab.errors import ConfigError
from vaelab.fsutil import atomic_write_text
from vaelab.report import figures
from vaelab.report.render import Doc
from vaelab.tune.storage import best_trials, default_storage_url, load_existing_study


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    csv: Path
    figures: list[Path]
    table: str
    """The trial table as plain text (what the CLI prints)."""


def report(
    out_dir: str | Path | None = None,
    *,
    storage: str | None = None,
    name: str | None = None,
    report_dir: str | Path | None = None,
) -> ReportFiles:
    """Report the sweep in `out_dir` (its sweep.db) or in `storage`; files go to `report_dir`
    (default OUT/report)."""
    if storage is None and out_dir is None:
        raise ConfigError("which sweep? give its directory, or --storage URL --name NAME")
    if storage is None:
        db = Path(out_dir) / "sweep.db"  # type: ignore[arg-type]
        if not db.is_file():
            raise ConfigError(f"{db} not found; is {out_dir} a sweep directory (vaelab sweep run)?")
        storage = default_storage_url(out_dir)  # type: ignore[arg-type]
    if report_dir is None:
        if out_dir is None:
            raise ConfigError("--storage without a sweep directory needs --out REPORT_DIR")
        report_dir = Path(out_dir) / "report"
    study = load_existing_study(storage, name)
    return write_report(study, Path(report_dir))


def _value_labels(study: optuna.Study) -> list[str]:
    objectives = study.user_attrs.get("vaelab:definition", {}).get("objectives")
    if objectives and len(objectives) == len(study.directions):
        return [f"{o['key']} ({o['direction'][:3]})" for o in objectives]
    return [f"value {i} ({d.name.lower()[:3]})" for i, d in enumerate(study.directions)]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def trial_rows(study: optuna.Study) -> tuple[list[str], list[list[str]]]:
    """(header, rows): number, state, params, objective values, wall time, host, run dir."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({p for t in trials for p in t.params})
    header = ["trial", "state", *params, *_value_labels(study), "wall s", "host", "run", "note"]
    retried_as: dict[int, list[int]] = {}
    for t in trials:
        if t.system_attrs.get("retry_history"):  # the trial it directly retries is the last
            retried_as.setdefault(t.system_attrs["retry_history"][-1], []).append(t.number)
    rows = []
    for t in trials:
        # a pruned trial's "value" is its last pruner report, not the objective: leave it blank
        values = t.values if t.state == TrialState.COMPLETE else [None] * len(study.directions)
        pruned, failed = t.state == TrialState.PRUNED, t.state == TrialState.FAIL
        origin, again = t.system_attrs.get("failed_trial"), retried_as.get(t.number)
        # a retry inherits its original's user attributes: only a failed trial's error is its own
        error = t.user_attrs.get("error", "") if failed else ""
        notes = [
            f"pruned after epoch {max(t.intermediate_values)}"
            if pruned and t.intermediate_values
            else "",
            "" if origin is None else f"retry of {origin}",
            error or ("worker lost (no heartbeat)" if failed and origin is None else ""),
            f"retried as {', '.join(map(str, again))}" if again else "",
        ]
        rows.append(
            [
                str(t.number),
                t.state.name,
                *(_fmt(t.params.get(p)) for p in params),
                *(_fmt(v) for v in values),
                _fmt(t.user_attrs.get("wall_time_s")),
                t.user_attrs.get("host", ""),
                t.user_attrs.get("run_dir", ""),
                "; ".join(n for n in notes if n),
            ]
        )
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows])
    return "\n".join(line.rstrip() for line in lines)


@figures.closed_on_error
def write_report(study: optuna.Study, root: Path) -> ReportFiles:
    """The report of `study` in `root`: report.md, report.html, trials.csv and the figures."""
    root.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    header, rows = trial_rows(study)
    doc = Doc(root=root)
    doc.h(1, f"Sweep {study.study_name}")
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    summary = ", ".join(f"{c} {s.lower()}" for s, c in counts.items() if c)
    doc.p(f"Study '{study.study_name}': {len(trials)} trials ({summary or 'none'}).")
    doc.h(2, "Trials")
    doc.table(header, rows, classes=[r[1] for r in rows])  # rows coloured by state
    _best_section(doc, study)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    drawn = _param_figures(doc, study, done) + _importance_figures(doc, study, done)
    drawn += _learning_curves(doc, trials)
    definition = study.user_attrs.get("vaelab:definition")
    if definition:
        doc.h(2, "Definition (search space, objectives, base config, evaluation)")
        doc.code(json.dumps(definition, indent=2), "json")
    md = atomic_write_text(root / "report.md", doc.markdown())
    page = atomic_write_text(root / "report.html", doc.html(f"Sweep {study.study_name}", False))
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    table_csv = atomic_write_text(root / "trials.csv", buf.getvalue())
    return ReportFiles(md, page, table_csv, drawn, text_table(header, rows))


def _best_section(doc: Doc, study: optuna.Study) -> None:
    doc.h(2, "Best trial" if len(study.directions) == 1 else "Pareto front")
    best = best_trials(study)
    if not best:
        doc.p("No complete trial yet.")
    for t in best:
        values = zip(_value_labels(study), t.values, strict=True)
        doc.p(
            f"Trial {t.number}: {', '.join(f'{lab} = {v:.6g}' for lab, v in values)}; "
            f"params {t.params}; run {t.user_attrs.get('run_dir', '?')}"
        )


def _figure(doc: Doc, fig: plt.Figure, stem: str, caption: str) -> Path:
    """`fig` saved beside the page as STEM.png, `stem` made safe for a file name, and shown."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_") + ".png"
    path = figures.save(fig, doc.root / name, dpi=100)
    doc.img(name, caption)
    return path


def _param_figures(doc: Doc, study: optuna.Study, done: list[FrozenTrial]) -> list[Path]:
    """Each objective of the complete trials against each parameter, one figure per objective."""
    params = sorted({p for t in study.get_trials(deepcopy=False) for p in t.params})
    if not (params and done):
        return []
    doc.h(2, "Parameters against the objective")
    drawn, cols = [], min(3, len(params))
    rows = math.ceil(len(params) / cols)
    for i, lab in enumerate(_value_labels(study)):
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
        for ax, name in zip(axes.flat, params, strict=False):
            _panel(ax, done, name, i, lab)
        for ax in list(axes.flat)[len(params) :]:
            ax.axis("off")
        fig.suptitle(f"{lab} of each complete trial (labels: trial numbers)")
        drawn.append(_figure(doc, fig, f"params_vs_{lab}", f"{lab} against each parameter"))
    return drawn


def _panel(ax: plt.Axes, done: list[FrozenTrial], name: str, index: int, label: str) -> None:
    """Objective `index` of the complete trials against parameter `name`, each point labelled
    by its trial number: categorical values at evenly spaced positions, log-scaled ones on a
    log axis."""
    have = [t for t in done if name in t.params]
    dist = have[0].distributions[name] if have else None
    x = [t.params[name] for t in have]
    if isinstance(dist, CategoricalDistribution):
        x = [dist.choices.index(v) for v in x]
        ax.set_xticks(range(len(dist.choices)), [str(c) for c in dist.choices])
    elif isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
        ax.set_xscale("log")
    ys = [t.values[index] for t in have]
    ax.scatter(x, ys, s=28, color="tab:blue")
    for xi, y, t in zip(x, ys, have, strict=True):
        ax.annotate(str(t.number), (xi, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(name)
    ax.set_ylabel(label)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(alpha=0.3)


def _importance_figures(doc: Doc, study: optuna.Study, done: list[FrozenTrial]) -> list[Path]:
    """PED-ANOVA importances of each objective, or why they would mean nothing."""
    doc.h(2, "Parameter importance")
    varying = [
        p for p in {p for t in done for p in t.params} if len({t.params.get(p) for t in done}) > 1
    ]
    drawn = []
    for i, lab in enumerate(_value_labels(study)):
        if len(done) < 2 or len(varying) < 2:
            doc.p(
                f"{lab}: not computed: importance compares parameters, and this study has "
                f"{len(done)} complete trial(s) with {len(varying)} varying parameter(s) "
                "(needs 2 and 2)."
            )
            continue
        sign = -1.0 if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        try:
            with warnings.catch_warnings():
                # it warns that it ranks low targets best: `sign` already makes lower better
                warnings.simplefilter("ignore", UserWarning)
                imp = optuna.importance.get_param_importances(
                    study,
                    evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    params=varying,
                    target=lambda t: sign * t.values[i],  # noqa: B023 (called at once)
                )
        except (ValueError, RuntimeError) as e:
            doc.p(f"{lab}: not computed: {e}.")
            continue
        names = list(imp)[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.2))
        ax.barh(names, [imp[n] for n in names], color="tab:orange")
        ax.set_xlabel(f"importance for {lab} (PED-ANOVA, sums to 1)")
        ax.set_xlim(0, max(1.0, *imp.values()))
        ranked = ", ".join(f"{k} {v:.2f}" for k, v in imp.items())
        why = "PED-ANOVA (Optuna): how much each parameter separates the best trials"
        drawn.append(_figure(doc, fig, f"importance_{lab}", f"{lab}: {why} ({ranked})"))
    return drawn


def _learning_curves(doc: Doc, trials: list[FrozenTrial]) -> list[Path]:
    """The per-epoch metric each trial reported to the pruner; pruned trials dashed."""
    reported = [t for t in trials if t.intermediate_values]
    if not reported:
        return []
    doc.h(2, "Learning curves")
    # the worker records what it reported: "-val/loss" where the study maximises
    metric = next(
        (t.user_attrs["pruner_metric"] for t in trials if "pruner_metric" in t.user_attrs),
        "value",
    )
    sign = -1.0 if metric.startswith("-") else 1.0  # undoes the negation of a maximised study
    metric = metric.removeprefix("-")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.get_cmap("tab10")
    for i, t in enumerate(reported):
        pruned, steps = t.state == TrialState.PRUNED, sorted(t.intermediate_values)
        values = [sign * t.intermediate_values[s] for s in steps]
        style, marker = ("--", "x") if pruned else ("-", "o")
        label = f"{t.number}{' pruned' if pruned else ''}"
        ax.plot(steps, values, style, marker=marker, color=colours(i % 10), alpha=0.85, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} reported to the pruner, per trial")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return [_figure(doc, fig, "learning_curves", f"{metric} per epoch, as each trial reported it")]
