"""The summary panel at the top of the report (STUDY_DIR/figures/summary.png).

Decoded afresh from the runs' best checkpoints on the CPU (a few dozen decodes: seconds), with
the evaluation's own seeds, so the panel shows the first prior samples and the first
interpolation path per label pair that the metrics in its titles were measured on. Numbers come
from study.json.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab.config import DEFAULT_PAIRS
from vaelab.errors import RunError
from vaelab.evaluate import keys, load_eval_data
from vaelab.evaluate.decode import sample_prior
from vaelab.evaluate.interpolation import interpolation_paths, pick_pairs
from vaelab.evaluate.keys import interp_key
from vaelab.models import AutoEncoder
from vaelab.report import figures
from vaelab.runtime import stream_seed
from vaelab.study.schema import RunEntry, StudyResult
from vaelab.train.checkpoint import load_model

N_SAMPLES = 32  # 4 rows of 8 per model
STEPS = 5  # the evaluation's default: start, 5 decoded codes, end


def run_label(run: RunEntry) -> str:
    return f"VAE β={run.beta:g}" if run.model == "vae" else "AE"


def _model(root: Path, run: RunEntry) -> AutoEncoder:
    run_dir = root / run.dir
    if not (run_dir / "checkpoints" / "best.pt").is_file():
        raise RunError(f"the summary panel needs {run_dir}/checkpoints/best.pt; re-run the study")
    return load_model(run_dir, "best", "cpu")[0]


def _sample_title(name: str, run: RunEntry) -> str:
    e = run.eval
    return (
        f"{name}: prior samples\nFD {e[keys.SAMPLES_FD]:.3g} · precision "
        f"{e[keys.SAMPLES_PRECISION]:.2f} · recall {e[keys.SAMPLES_RECALL]:.2f}"
    )


def write_summary_panel(root: Path, s: StudyResult) -> Path:
    """Draw figures/summary.png for the study in `root` described by study.json `s`."""
    c, runs = s.config, s.runs
    tuned, beta10 = runs[s.tuned], runs["vae_beta10"]
    models = {name: _model(root, runs[name]) for name in ("ae", s.tuned, "vae_beta10")}
    samples = [
        (
            _sample_title(label, run),
            sample_prior(models[name], N_SAMPLES, stream_seed(c.seed, "eval_samples")),
        )
        for name, label, run in (
            ("ae", "AE", runs["ae"]),
            (s.tuned, f"tuned {run_label(tuned)}", tuned),
            ("vae_beta10", run_label(beta10), beta10),
        )
    ]
    x, _, y = load_eval_data(
        c.dataset, "test", data_dir=c.data_dir, limit=c.eval_limit, seed=c.seed
    )
    strips = []
    for name, label in (("ae", "AE"), (s.tuned, f"tuned {run_label(tuned)}")):
        rows = []
        for a, b in DEFAULT_PAIRS:
            pair = pick_pairs(y, a, b, 1, c.seed)  # the first of the evaluation's pairs
            rows.append((f"{a}→{b}", interpolation_paths(models[name], x, pair, STEPS, "lerp")[0]))
        realism = runs[name].eval[interp_key("lerp", "realism_median")]
        strips.append((f"{label}: lerp paths, realism {realism:.2f}", rows))
    with torch.no_grad():
        return figures.summary_panel(
            root / "figures" / "summary.png",
            samples,
            strips,
            _rate_distortion(s),
            f"AE vs tuned VAE vs β = 10 on {c.dataset} ({c.preset} preset; realism: "
            "1 ≈ a real image, higher = less real)",
        )


def _rate_distortion(s: StudyResult) -> figures.RateDistortion:
    """The β search's rate–distortion curve with the chosen β and the AE's distortion."""
    betas, chosen = s.search.trials, s.search.chosen_beta
    trial = {b: s.runs[s.search.trial_run(b)].eval for b in betas}
    tuned = s.runs[s.tuned].eval
    return figures.RateDistortion(
        rate=[trial[b][keys.TEST_KL] for b in betas],
        distortion=[trial[b][keys.TEST_SSE] for b in betas],
        labels=[f"β={b:g}" for b in betas],
        chosen=(trial[chosen][keys.TEST_KL], trial[chosen][keys.TEST_SSE]),
        chosen_beta=chosen,
        ae_distortion=s.runs["ae"].eval[keys.TEST_SSE],
        # the chosen β's final run, when it is not the trial itself (trained longer)
        tuned=None
        if s.search.trial_run(chosen) == s.tuned
        else (tuned[keys.TEST_KL], tuned[keys.TEST_SSE]),
    )
