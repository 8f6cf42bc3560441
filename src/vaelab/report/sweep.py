"""`vaelab sweep report`: the trials as a table, the best trial, and figures, as markdown, an
offline HTML page (relative image paths, no scripts) and a CSV, all in one folder."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from vaelab.errors import ConfigError
from vaelab.fsutil import atomic_write_text
from vaelab.report import sweep_plots as plots
from vaelab.tune.storage import default_storage_url, load_existing_study


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
        # a retry inherits its original's user attributes: only a failed trial's error is its own
        note = t.user_attrs.get("error", "") if t.state == TrialState.FAIL else ""
        origin = t.system_attrs.get("failed_trial")
        if origin is not None:
            note = f"retry of {origin}" + (f"; {note}" if note else "")
        if t.state == TrialState.FAIL and not note:
            note = "worker lost (no heartbeat)"
        if t.number in retried_as:
            note += f"; retried as {', '.join(map(str, retried_as[t.number]))}"
        if t.state == TrialState.PRUNED and t.intermediate_values:
            last = max(t.intermediate_values)
            note = f"pruned after epoch {last}" + (f"; {note}" if note else "")
        rows.append(
            [
                str(t.number),
                t.state.name,
                *(_fmt(t.params.get(p)) for p in params),
                *(_fmt(v) for v in values),
                _fmt(t.user_attrs.get("wall_time_s")),
                t.user_attrs.get("host", ""),
                t.user_attrs.get("run_dir", ""),
                note,
            ]
        )
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _best(study: optuna.Study) -> list[FrozenTrial]:
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    return [study.best_trial] if len(study.directions) == 1 else list(study.best_trials)


def _importance(
    study: optuna.Study, trials: list[FrozenTrial], index: int
) -> tuple[dict[str, float] | None, str]:
    """PED-ANOVA importances of objective `index`, or None and why they would mean nothing."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    varying = [
        p for p in {p for t in done for p in t.params} if len({t.params.get(p) for t in done}) > 1
    ]
    if len(done) < 2 or len(varying) < 2:
        return None, (
            f"not computed: importance compares parameters, and this study has {len(done)} "
            f"complete trial(s) with {len(varying)} varying parameter(s) (needs 2 and 2)"
        )
    sign = -1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():
            # it warns that it ranks low targets best: `sign` already makes lower better
            warnings.simplefilter("ignore", UserWarning)
            imp = optuna.importance.get_param_importances(
                study, evaluator=evaluator, params=varying, target=lambda t: sign * t.values[index]
            )
    except (ValueError, RuntimeError) as e:
        return None, f"not computed: {e}"
    return dict(imp), "PED-ANOVA (Optuna): how much each parameter separates the best trials"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def write_report(study: optuna.Study, root: Path) -> ReportFiles:
    root.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    header, rows = trial_rows(study)
    labels = _value_labels(study)
    params = sorted({p for t in trials for p in t.params})
    blocks: list[tuple[str, Any]] = []  # (kind, payload) rendered to markdown and HTML
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    summary = ", ".join(f"{c} {s.lower()}" for s, c in counts.items() if c)
    blocks.append(("p", f"Study '{study.study_name}': {len(trials)} trials ({summary or 'none'})."))
    blocks.append(("h", "Trials"))
    blocks.append(("table", (header, rows)))
    blocks.append(("h", "Best trial" if len(study.directions) == 1 else "Pareto front"))
    best = _best(study)
    if not best:
        blocks.append(("p", "No complete trial yet."))
    for t in best:
        values = ", ".join(f"{lab} = {v:.6g}" for lab, v in zip(labels, t.values, strict=True))
        blocks.append(
            (
                "p",
                f"Trial {t.number}: {values}; params {t.params}; "
                f"run {t.user_attrs.get('run_dir', '?')}",
            )
        )
    figures: list[Path] = []
    if params and any(t.state == TrialState.COMPLETE for t in trials):
        blocks.append(("h", "Parameters against the objective"))
        for i, lab in enumerate(labels):
            f = plots.param_vs_objective(
                root / f"params_vs_{_slug(lab)}.png", trials, params, i, lab
            )
            figures.append(f)
            blocks.append(("img", (f.name, f"{lab} against each parameter")))
    blocks.append(("h", "Parameter importance"))
    for i, lab in enumerate(labels):
        imp, why = _importance(study, trials, i)
        if imp is None:
            blocks.append(("p", f"{lab}: {why}."))
            continue
        f = plots.importance_bars(root / f"importance_{_slug(lab)}.png", imp, lab)
        figures.append(f)
        ranked = ", ".join(f"{k} {v:.2f}" for k, v in imp.items())
        blocks.append(("img", (f.name, f"{lab}: {why} ({ranked})")))
    if any(t.intermediate_values for t in trials):
        blocks.append(("h", "Learning curves"))
        # the worker records what it reported: "-val/loss" where the study maximises
        metric = next(
            (t.user_attrs["pruner_metric"] for t in trials if "pruner_metric" in t.user_attrs),
            "value",
        )
        sign = -1.0 if metric.startswith("-") else 1.0
        metric = metric.removeprefix("-")
        f = plots.learning_curves(root / "learning_curves.png", trials, metric, sign)
        figures.append(f)
        blocks.append(("img", (f.name, f"{metric} per epoch, as each trial reported it")))
    definition = study.user_attrs.get("vaelab:definition")
    if definition:
        blocks.append(("h", "Definition (search space, objectives, base config, evaluation)"))
        blocks.append(("pre", json.dumps(definition, indent=2)))
    title = f"Sweep {study.study_name}"
    md = root / "report.md"
    page = root / "report.html"
    table_csv = root / "trials.csv"
    atomic_write_text(md, _markdown(title, blocks))
    atomic_write_text(page, _html(title, blocks))
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    atomic_write_text(table_csv, buf.getvalue())
    return ReportFiles(md, page, table_csv, figures, text_table(header, rows))


def _markdown(title: str, blocks: list[tuple[str, Any]]) -> str:
    out = [f"# {title}", ""]
    for kind, b in blocks:
        if kind == "h":
            out += [f"## {b}", ""]
        elif kind == "p":
            out += [b, ""]
        elif kind == "img":
            out += [f"![{b[1]}]({b[0]})", ""]
        elif kind == "pre":
            out += ["```json", b, "```", ""]
        elif kind == "table":
            header, rows = b
            cell = lambda s: s.replace("|", "\\|")  # noqa: E731
            out.append("| " + " | ".join(map(cell, header)) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
            out.append("")
    return "\n".join(out)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }}
tr.PRUNED td {{ color: #a33; }} tr.FAIL td {{ color: #888; }}
img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _html(title: str, blocks: list[tuple[str, Any]]) -> str:
    e = html.escape
    body = []
    for kind, b in blocks:
        if kind == "h":
            body.append(f"<h2>{e(b)}</h2>")
        elif kind == "pre":
            body.append(f"<pre>{e(b)}</pre>")
        elif kind == "p":
            body.append(f"<p>{e(b)}</p>")
        elif kind == "img":
            body.append(
                f'<figure><img src="{e(b[0])}" alt="{e(b[1])}">'
                f"<figcaption>{e(b[1])}</figcaption></figure>"
            )
        elif kind == "table":
            header, rows = b
            th = "".join(f"<th>{e(h)}</th>" for h in header)
            trs = "".join(
                f'<tr class="{e(r[1])}">' + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                for r in rows
            )
            body.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")
    return _PAGE.format(title=e(title), body="\n".join(body))
