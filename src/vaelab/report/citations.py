"""Pieces of the study report that its sections, its answers and its figures share: the
evaluation's interpolation settings, probe accuracies and the name of a run's model."""

from __future__ import annotations

from vaelab.evaluate import EvalConfig
from vaelab.report.render import Doc
from vaelab.study.schema import RunEntry, StudyResult

# The evaluation's interpolation settings (pairs, image pairs per pair): the runs and the study's
# comparison figures use the defaults.
INTERP = EvalConfig()


def probe(doc: Doc, run: str, key: str) -> str:
    """A probe accuracy of a run, as the representation stage recorded it."""
    return doc.cite(lambda s: s.representation[run][key], ".4f")


def run_label(run: RunEntry) -> str:
    """How the report names a run's model: `AE` or `VAE β=…`."""
    return f"VAE β={run.beta:g}" if run.model == "vae" else "AE"


def ae_and_tuned(s: StudyResult) -> list[tuple[str, str]]:
    """The runs the report compares, as (run name, label): the AE and the tuned VAE."""
    return [("ae", "AE"), (s.tuned, f"tuned {run_label(s.runs[s.tuned])}")]
