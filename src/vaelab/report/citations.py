"""Pieces of the study report that its sections and its answers share: the one metric table,
the evaluation's interpolation settings, and citations of study.json values outside a run's eval
dict (vaelab.report.render.Doc.ev cites those).
"""

from __future__ import annotations

from vaelab.evaluate import EvalConfig, keys
from vaelab.evaluate.keys import interp_key
from vaelab.report.render import Doc
from vaelab.study.schema import RunEntry

# key -> (label, format): the one table for every place the report shows a run's metric.
METRICS: dict[str, tuple[str, str]] = {
    keys.TEST_SSE: ("SSE / image", ".4g"),
    keys.TEST_MSE: ("MSE / pixel", ".4g"),
    keys.TEST_KL: ("KL (nats)", ".4g"),
    keys.TEST_ELBO: ("ELBO (nats)", ".2f"),
    keys.TEST_IW_NLL: ("IW-NLL (nats)", ".2f"),
    keys.TEST_ACTIVE_UNITS: ("active units", "d"),
    keys.SAMPLES_FD: ("sample FD", ".4g"),
    keys.SAMPLES_PRECISION: ("precision", ".3f"),
    keys.SAMPLES_RECALL: ("recall", ".3f"),
    keys.RECON_FD: ("recon FD", ".4g"),
    keys.SAMPLES_CLASS_ENTROPY: ("class entropy", ".3f"),
    keys.SAMPLES_CONFIDENCE: ("confidence", ".3f"),
    keys.RECON_ACCURACY: ("recon acc", ".3f"),
    interp_key("lerp", "realism_median"): ("lerp realism", ".3f"),
    keys.PROBE_LINEAR: ("linear probe", ".4f"),
    keys.PROBE_KNN: ("5-NN", ".4f"),
}
VAE_ONLY = (keys.TEST_KL, keys.TEST_ELBO, keys.TEST_IW_NLL, keys.TEST_ACTIVE_UNITS)

# The evaluation's interpolation settings (pairs, image pairs per pair): the runs and the study's
# comparison figures use the defaults.
INTERP = EvalConfig()


def probe(doc: Doc, run: str, key: str) -> str:
    """A probe accuracy of a run, as the representation stage recorded it."""
    return doc.cite(lambda s: s.representation[run][key], ".4f")


def stage_time(doc: Doc, stage: str) -> str:
    """The wall time of a stage of the study."""
    return doc.cite(lambda s: s.stage_time_s[stage], ".1f")


def train_value(doc: Doc, run: str, key: str, spec: str) -> str:
    """A value of a run's training summary (vaelab.train.loop)."""
    return doc.cite(lambda s: s.runs[run].train[key], spec)


def metric(doc: Doc, run: str, key: str) -> str:
    """A run's metric in its METRICS format, or "–" when not part of the run's evaluation."""
    assert doc.study is not None, "only a study's Doc cites study.json"
    return doc.ev(run, key, METRICS[key][1]) if key in doc.study.runs[run].eval else "–"


def run_label(run: RunEntry) -> str:
    """How the report names a run's model: `AE` or `VAE β=…`."""
    return f"VAE β={run.beta:g}" if run.model == "vae" else "AE"
