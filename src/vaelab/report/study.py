"""The study report: report.md and report.html from study.json, with answers generated from it.

The report opens with one summary figure (samples, interpolations, rate–distortion), then
answers the study's questions (vaelab.report.answers), then shows every stage
(vaelab.report.sections). Each section and each question is one function; every number in the
text cites a study.json path (see vaelab.report.render), and every judgement in the wording rests
on a named threshold (vaelab.report.answers). The report reads study.json as a
vaelab.study.schema.StudyResult and eval.json keys by their names in vaelab.evaluate.keys; its
figures are drawn from those and from what the evaluations stored (vaelab.report.study_figures),
so re-rendering a study folder needs no model. Figures use relative paths: the report opens from
any folder, with no network.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.fsutil import atomic_write_text
from vaelab.report import answers, faq, sections
from vaelab.report.citations import METRICS
from vaelab.report.render import Doc, fmt
from vaelab.report.study_figures import write_study_figures
from vaelab.study.schema import StudyResult, resolve

__all__ = ["METRICS", "build", "fmt", "resolve", "write_report"]


def build(root: Path, s: StudyResult) -> Doc:
    """The whole report, section by section (figures must already exist under root)."""
    doc = Doc(s, root)
    sections.summary(doc, s)
    answers.answers_section(doc, s)
    sections.reproduce_section(doc, s)
    sections.data_section(doc, s)
    for name, title in (
        ("ae", "2. Auto-encoder"),
        ("vae_beta0", "3a. VAE, β = 0"),
        ("vae_beta10", "3b. VAE, β = 10"),
    ):
        sections.run_section(doc, s, name, title)
    sections.search_section(doc, s)
    beta = s.search.chosen_beta
    sections.run_section(doc, s, s.tuned, f"5. The tuned VAE (β = {beta:g})", full=True)
    sections.interpolation_section(doc, s)
    sections.representation_section(doc, s)
    sections.all_runs_section(doc, s)
    faq.units_section(doc, s)
    return doc


def write_report(root: Path, study: StudyResult) -> tuple[Path, Path]:
    """Draw the study's figures, then write report.md and report.html."""
    write_study_figures(root, study)
    doc = build(root, study)
    title = f"vaelab study ({study.config.preset})"
    md = atomic_write_text(root / "report.md", doc.markdown())
    page = atomic_write_text(root / "report.html", doc.html(title))
    return md, page
