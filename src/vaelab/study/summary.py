"""The summary panel at the top of the report (STUDY_DIR/figures/summary.png).

Decoded afresh from the runs' best checkpoints on the CPU (a few dozen decodes: seconds), with
the evaluation's own seeds, so the panel shows the first prior samples and the first
interpolation path per label pair that the metrics in its titles were measured on. Numbers come
from study.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vaelab import figures
from vaelab.checkpoint import load_model
from vaelab.errors import RunError
from vaelab.evaluation import load_eval_data
from vaelab.evaluation.config import DEFAULT_PAIRS
from vaelab.evaluation.decode import sample_prior
from vaelab.evaluation.interpolation import interpolation_paths, pick_pairs
from vaelab.models import AutoEncoder

N_SAMPLES = 32  # 4 rows of 8 per model
STEPS = 5  # the evaluation's default: start, 5 decoded codes, end


def run_label(run: dict[str, Any]) -> str:
    return f"VAE β={run['beta']:g}" if run["model"] == "vae" else "AE"


def _model(root: Path, run: dict[str, Any]) -> AutoEncoder:
    run_dir = root / run["dir"]
    if not (run_dir / "checkpoints" / "best.pt").is_file():
        raise RunError(f"the summary panel needs {run_dir}/checkpoints/best.pt; re-run the study")
    return load_model(run_dir, "best", "cpu")[0]


def _sample_title(name: str, run: dict[str, Any]) -> str:
    e = run["eval"]
    return (
        f"{name}: prior samples\nFD {e['samples/fd']:.3g} · precision "
        f"{e['samples/precision']:.2f} · recall {e['samples/recall']:.2f}"
    )


def write_summary_panel(root: Path, s: dict[str, Any]) -> Path:
    """Draw figures/summary.png for the study in `root` described by study.json `s`."""
    c, runs, search = s["config"], s["runs"], s["search"]
    tuned, beta10 = runs[s["tuned"]], runs["vae_beta10"]
    models = {name: _model(root, runs[name]) for name in ("ae", s["tuned"], "vae_beta10")}
    samples = [
        (
            _sample_title(label, run),
            sample_prior(models[name], N_SAMPLES, c["seed"] + 1),  # the evaluation's stream
        )
        for name, label, run in (
            ("ae", "AE", runs["ae"]),
            (s["tuned"], f"tuned {run_label(tuned)}", tuned),
            ("vae_beta10", run_label(beta10), beta10),
        )
    ]
    x, _, y = load_eval_data(
        c["dataset"], "test", data_dir=c["data_dir"], limit=c["eval_limit"], seed=c["seed"]
    )
    strips = []
    for name, label in (("ae", "AE"), (s["tuned"], f"tuned {run_label(tuned)}")):
        rows = []
        for a, b in DEFAULT_PAIRS:
            pair = pick_pairs(y, a, b, 1, c["seed"])  # the first of the evaluation's pairs
            rows.append((f"{a}→{b}", interpolation_paths(models[name], x, pair, STEPS, "lerp")[0]))
        realism = runs[name]["eval"]["interp/lerp/realism_median"]
        strips.append((f"{label}: lerp paths, realism {realism:.2f}", rows))
    betas, chosen = search["trials"], search["chosen_beta"]
    trial = {b: runs[search["trial_runs"][f"{b:g}"]]["eval"] for b in betas}
    rd = figures.RateDistortion(
        rate=[trial[b]["test/kl"] for b in betas],
        distortion=[trial[b]["test/sse"] for b in betas],
        labels=[f"β={b:g}" for b in betas],
        chosen=(trial[chosen]["test/kl"], trial[chosen]["test/sse"]),
        chosen_beta=chosen,
        ae_distortion=runs["ae"]["eval"]["test/sse"],
        # the chosen β's final run, when it is not the trial itself (trained longer)
        tuned=None
        if search["trial_runs"][f"{chosen:g}"] == s["tuned"]
        else (tuned["eval"]["test/kl"], tuned["eval"]["test/sse"]),
    )
    with torch.no_grad():
        return figures.summary_panel(
            root / "figures" / "summary.png",
            samples,
            strips,
            rd,
            f"AE vs tuned VAE vs β = 10 on {c['dataset']} ({c['preset']} preset; realism: "
            "1 ≈ a real image, higher = less real)",
        )
