"""The study report: report.md and report.html from study.json, with answers generated from it.

The report opens with one summary figure (samples, interpolations, rate–distortion), then
answers the study's questions, then shows every stage. Each section and each question is one
function; every number in the text cites a study.json path (see vaelab.study.render), and every
judgement in the wording rests on a named threshold below. The report reads study.json as a
vaelab.study.schema.StudyResult and eval.json keys by their names in vaelab.evaluation.keys.
Figures use relative paths: the report opens from any folder, with no network.
"""

from __future__ import annotations

import math
from pathlib import Path

from vaelab import figures
from vaelab.evaluation import EvalConfig, keys
from vaelab.evaluation.keys import interp_key
from vaelab.fsutil import atomic_write_text
from vaelab.study import faq
from vaelab.study.render import Doc, fmt
from vaelab.study.schema import StudyResult, resolve
from vaelab.study.selection import criterion_text
from vaelab.study.summary import run_label, write_summary_panel

__all__ = ["METRICS", "build", "fmt", "resolve", "write_report"]

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

# ---- thresholds behind the wording of the answers -------------------------------------------
PRIOR_NORM_BAND = (0.8, 1.25)
"""AE code norm / prior norm (√nz) inside this band: 'their scale resembles the prior's' ..."""
PRIOR_STD_BAND = (0.5, 2.0)
"""... provided every dimension's std of the AE codes is inside this band too."""
OFF_MANIFOLD_FACTOR = 1.2
"""AE prior-sample-to-code distance ratio above this × the VAE's: 'samples fall off its codes'."""
AE_LIKE_SSE_FACTOR = 1.5
"""β = 0 reconstructions with SSE under this × the AE's are 'AE-like'."""
COLLAPSE_KL_NATS = 1.0
"""β = 10 with KL under this (nats/image) ..."""
COLLAPSE_SSE_SHARE = 0.8
"""... and SSE above this share of the mean-image SSE (or no active unit): 'collapsed'."""
PARTIAL_COLLAPSE_KL_SHARE = 0.2
"""β = 10 KL under this share of the tuned VAE's: 'partly collapsed'."""
COURSE_BETA_RANGE = (0.6, 1.8)
"""Tuned β that course solutions reached, converted to per-image SSE + β·KL (see the FAQ)."""
REALISM_MARGIN = 0.03
"""Realism medians closer than this (ratio units) count as equal."""
CONFIDENCE_MARGIN = 0.02
"""Lowest-confidence averages closer than this count as equal."""
PR_LOW_SHARE = 0.5
"""Sample precision (recall) under this share of its real-vs-real floor counts as low."""


# The evaluation's interpolation settings (pairs, image pairs per pair): the runs and the study's
# comparison figures use the defaults.
INTERP = EvalConfig()


def _n_paths() -> int:
    return len(INTERP.pairs) * INTERP.n_pairs


def _pair_text() -> str:
    pairs = ", ".join(f"{a}→{b}" for a, b in INTERP.pairs)
    return f"{pairs}; {INTERP.n_pairs} image pairs each"


def _fig(doc: Doc, root: Path, rel: str, caption: str) -> None:
    if not (root / rel).is_file():
        raise FileNotFoundError(f"report references missing figure {rel}")
    doc.img(rel, caption)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


# Citations of study.json values outside a run's eval dict (Doc.ev cites those); each names
# the value by the fields it reads.
def _stage_time(doc: Doc, stage: str) -> str:
    return doc.cite(lambda s: s.stage_time_s[stage], ".1f")


def _probe(doc: Doc, run: str, key: str) -> str:
    return doc.cite(lambda s: s.representation[run][key], ".4f")


def _train(doc: Doc, run: str, key: str, spec: str) -> str:
    """A value of a run's training summary (vaelab.training)."""
    return doc.cite(lambda s: s.runs[run].train[key], spec)


def build(root: Path, s: StudyResult) -> Doc:
    """The whole report, section by section (figures must already exist under root)."""
    doc = Doc(s)
    summary(doc, root, s)
    answers(doc, s)
    reproduce_section(doc, s)
    data_section(doc, root, s)
    for name, title in (
        ("ae", "2. Auto-encoder"),
        ("vae_beta0", "3a. VAE, β = 0"),
        ("vae_beta10", "3b. VAE, β = 10"),
    ):
        run_section(doc, root, s, name, title)
    search_section(doc, root, s)
    beta = s.search.chosen_beta
    run_section(doc, root, s, s.tuned, f"5. The tuned VAE (β = {beta:g})", full=True)
    interpolation_section(doc, root, s)
    representation_section(doc, s)
    all_runs_section(doc, s)
    faq.units_section(doc, s)
    return doc


# ---- sections -------------------------------------------------------------------------------
def summary(doc: Doc, root: Path, s: StudyResult) -> None:
    """Title, the summary panel (the first figure of the page), then one line of context."""
    c = s.config
    doc.h(1, f"vaelab study: AE and β-VAE on {c.dataset} ({c.preset} preset)")
    _fig(
        doc,
        root,
        "figures/summary.png",
        "Top: prior samples of the AE, the tuned VAE and the β = 10 VAE with their Fréchet "
        "distance, precision (are samples realistic?) and recall (are all kinds of digits "
        "produced?). Bottom: linear interpolations between test images (ends are the real "
        "images) with their realism (1 ≈ a real image), and the rate–distortion curve of the "
        "β search with the chosen β.",
    )
    doc.p(
        f"Chosen β = {doc.cite(lambda s: s.search.chosen_beta, 'g')} (per-image SSE + β·KL, see "
        f"Units and FAQ). Wall time {doc.cite(lambda s: s.wall_time_s, '.0f')} s; "
        f"{len(s.runs)} training "
        "runs in `runs/`. Every number below is read from `study.json` in this folder."
    )
    doc.p(
        f"Explore the AE and the tuned VAE (`runs/ae`, `runs/{s.tuned}`) in the browser: "
        f"`vaelab explore {c.out}` (latent maps, live decodes, interpolations, sliders, "
        'prior samples, draw a digit; README "Explore a model").'
    )


def reproduce_section(doc: Doc, s: StudyResult) -> None:
    c, env = s.config, s.env
    doc.h(2, "How to reproduce", "reproduce")
    doc.code(
        f"make study            # or: vaelab study --preset {c.preset} --dataset "
        f"{c.dataset} --out {c.out}"
    )
    doc.table(
        ["item", "value"],
        [
            ["vaelab", env.vaelab],
            ["git commit", str(env.git_commit)],
            ["python / torch / numpy", f"{env.python} / {env.torch} / {env.numpy}"],
            [
                "device",
                f"{env.device} ({env.gpu or env.processor}, "
                f"{env.cpu_count} CPUs, {env.torch_threads} torch threads)",
            ],
            ["seed", f"{c.seed} (every run; evaluation seed {c.seed})"],
            [
                "reference classifier",
                f"{s.classifier.variant}, test accuracy "
                f"{doc.cite(lambda s: s.classifier.test_accuracy, '.4f')}",
            ],
        ],
    )
    doc.table(
        ["stage", "wall time this session (s)"],
        [[k, _stage_time(doc, k)] for k in s.stage_order],
    )
    doc.p(
        f"Compute in the runs (training + evaluation, summed over sessions): "
        f"{doc.cite(lambda s: s.compute_time_s, '.0f')} s. Re-running the command reuses "
        "finished runs and resumes unfinished ones."
    )


def data_section(doc: Doc, root: Path, s: StudyResult) -> None:
    c, splits = s.config, s.data.splits
    doc.h(2, "1. Data", "data")
    doc.table(
        ["split", "images", "label counts", "pixel mean"],
        [
            [k, str(v.count), " ".join(map(str, v.label_counts)), f"{v.pixel_mean:.4f}"]
            for k, v in splits.items()
        ],
    )
    doc.p(
        f"Source: {s.data.source}. Training runs use "
        f"{c.limit_train or splits['train'].count} train images; evaluation uses the "
        f"first {c.eval_limit or splits['test'].count} test images."
    )
    _fig(doc, root, "figures/data_strip.png", "The first 16 training images.")


def run_section(
    doc: Doc, root: Path, s: StudyResult, name: str, title: str, full: bool = False
) -> None:
    r = s.runs[name]
    doc.h(2, title, name)
    shown = [k for k in METRICS if (r.model == "vae" or k not in VAE_ONLY) and k in r.eval]
    doc.table(["metric", "value"], [[METRICS[k][0], doc.ev(name, k, METRICS[k][1])] for k in shown])
    d = r.dir
    _fig(doc, root, f"{d}/figures/curves.png", "Training curves (per logged iteration).")
    _fig(doc, root, f"{d}/figures/reconstructions.png", "Test inputs (top) and reconstructions.")
    _fig(doc, root, f"{d}/figures/samples.png", "Decodes of z ~ N(0, I).")
    if full:
        for f, cap in (
            ("latent_map.png", "Test codes μ, first two principal components."),
            ("traversals.png", "Traversals of the most informative dimensions."),
            ("kl_per_dim.png", "KL per latent dimension."),
            ("interp_confidence.png", "Classifier confidence along its own paths."),
        ):
            _fig(doc, root, f"{d}/figures/{f}", cap)


SEARCH_METRICS = [
    keys.TEST_SSE,
    keys.TEST_KL,
    keys.TEST_ELBO,
    keys.TEST_IW_NLL,
    keys.SAMPLES_FD,
    keys.SAMPLES_PRECISION,
    keys.SAMPLES_RECALL,
    keys.RECON_FD,
    keys.SAMPLES_CLASS_ENTROPY,
    keys.SAMPLES_CONFIDENCE,
    keys.RECON_ACCURACY,
    keys.TEST_ACTIVE_UNITS,
    keys.PROBE_LINEAR,
]


def search_section(doc: Doc, root: Path, s: StudyResult) -> None:
    """Section 4: the criterion, the search rule, every trial, (halving) every later rung, how
    trials were evaluated, and the trade-off figures."""
    c, search = s.config, s.search
    doc.h(2, "4. β search", "search")
    doc.p(
        f"Selection criterion: {criterion_text(c.min_recon_accuracy, c.min_class_entropy)}"
        f". Search: {'; '.join(search.log)}. Result: {search.reason}."
    )
    if search.method == "halving":
        doc.p(f"Search rule: {search.rule}.")
    doc.table(["β"] + [METRICS[k][0] for k in SEARCH_METRICS], _trial_rows(doc, s))
    _rung_tables(doc, s)
    _search_units(doc, s)
    for rel, cap in (
        ("figures/rate_distortion.png", "Rate (KL) against distortion (SSE) across β."),
        ("figures/beta_fd.png", "Sample and reconstruction Fréchet distance vs β."),
        (
            "figures/beta_precision_recall.png",
            "Precision (fidelity) and recall (coverage) of prior samples vs β.",
        ),
        ("figures/beta_entropy.png", "Sample class entropy and confidence vs β."),
        ("figures/beta_active_units.png", "Active units vs β."),
        ("figures/beta_probe.png", "Linear-probe and 5-NN accuracy vs β."),
    ):
        if rel.endswith("beta_probe.png") and not (root / rel).is_file():
            continue  # trials with the selection evaluation have no probes
        _fig(doc, root, rel, cap)


def _trial_rows(doc: Doc, s: StudyResult) -> list[list[str]]:
    search, rows = s.search, []
    for b in search.trials:
        name = search.trial_run(b)
        ev = s.runs[name].eval
        mark = (
            " (chosen)"
            if b == search.chosen_beta
            else (" (eligible)" if b in search.eligible else "")
        )
        cells = [doc.ev(name, k, METRICS[k][1]) if k in ev else "–" for k in SEARCH_METRICS]
        rows.append([f"{b:g}{mark}", *cells])  # "–": not part of this run's evaluation
    return rows


def _rung_tables(doc: Doc, s: StudyResult) -> None:
    """Successive halving: one table per rung after the first (the first is the trial table)."""
    cols = (keys.SAMPLES_FD, keys.SAMPLES_CLASS_ENTROPY, keys.RECON_ACCURACY)
    for rung in s.search.rungs[1:]:
        doc.table(
            [f"rung {rung.rung} ({rung.epochs} epochs on {rung.limit_train} images): β"]
            + [METRICS[k][0] for k in cols[:2]]
            + ["recon accuracy"],
            [[b] + [doc.ev(name, k, METRICS[k][1]) for k in cols] for b, name in rung.runs.items()],
        )


def _search_units(doc: Doc, s: StudyResult) -> None:
    c = s.config
    first = s.search.trial_run(s.search.trials[0])
    full = [n for n in s.run_order if s.runs[n].evaluation == "full"]
    doc.p(
        "Evaluation sized to the decision: trials got the selection evaluation "
        f"(reconstruction accuracy and rate/distortion on {c.selection_limit} test "
        f"images, FD, precision/recall and class entropy of {c.selection_samples} prior "
        "samples; FD grows and the k-NN measures change as the sample count shrinks, so "
        f"trial values compare with each other only); {', '.join(full)} got the full one "
        f"({c.n_samples} prior samples, IW-NLL with K = {c.iw_samples}, probes, "
        "interpolations, all figures). "
        "Units: SSE per image; KL, ELBO and IW-NLL in nats per image (IW-NLL: "
        f"importance-weighted with K = {c.iw_samples} on {c.iw_limit or 'all'} test "
        "images, a continuous density on dequantised pixels for this Gaussian decoder with "
        "σ² = ½); FD = Fréchet distance of reference-classifier features; precision and recall "
        f"with k = {doc.ev(first, keys.SAMPLES_PR_K, 'g')} nearest neighbours on "
        f"{doc.ev(first, keys.SAMPLES_PR_N, 'g')} images per set. Floors for the trials (real "
        f"train vs test at the same set size): FD {doc.ev(first, keys.FLOOR_FD)}"
        f", precision {doc.ev(first, keys.FLOOR_PRECISION, '.3f')}, recall "
        f"{doc.ev(first, keys.FLOOR_RECALL, '.3f')}."
    )


INTERP_COLUMNS = [
    ("realism_median", "realism, median", ".3f"),
    ("realism_p90", "realism, 90th pct", ".3f"),
    ("realism_worst", "realism, worst per path", ".3f"),
    ("mean_conf", "mean confidence", ".3f"),
    ("min_conf", "lowest confidence", ".3f"),
    ("path_length_ratio", "path length / straight", ".3f"),
]


def interpolation_section(doc: Doc, root: Path, s: StudyResult) -> None:
    doc.h(2, "6. Interpolation: AE vs tuned VAE", "interpolation")
    for a, b in INTERP.pairs:
        _fig(
            doc,
            root,
            f"figures/interp_compare_{a}to{b}.png",
            f"{a}→{b}: rows alternate AE and tuned VAE, lerp then slerp; the ends are the real "
            "test images.",
        )
    tuned = s.runs[s.tuned]
    for run, label in ((s.runs["ae"], "AE"), (tuned, "tuned " + run_label(tuned))):
        _fig(
            doc,
            root,
            f"{run.dir}/figures/interp_realism.png",
            f"{label}: realism of the in-between images along lerp and slerp paths and along a "
            "pixel cross-fade of the same end images (1 ≈ a held-out real image).",
        )
    _fig(
        doc,
        root,
        "figures/interp_confidence_compare.png",
        f"Classifier confidence along the paths (mean over {_n_paths()} paths, band = min–max).",
    )
    doc.table(
        ["model, path"] + [label for _, label, _ in INTERP_COLUMNS], _interpolation_rows(doc, s)
    )
    doc.p(faq.INTERPOLATION_MEASURES)


def _interpolation_rows(doc: Doc, s: StudyResult) -> list[list[str]]:
    """The AE's and the tuned VAE's lerp and slerp paths, then the model-free pixel fade."""
    rows = []
    for name, label in (("ae", "AE"), (s.tuned, "tuned " + run_label(s.runs[s.tuned]))):
        for mode in ("lerp", "slerp"):
            rows.append(
                [f"{label}, {mode}"]
                + [doc.ev(name, interp_key(mode, key), spec) for key, _, spec in INTERP_COLUMNS]
            )
    pixel = [
        doc.ev("ae", interp_key("pixel", key), spec)
        if interp_key("pixel", key) in s.runs["ae"].eval
        else "–"
        for key, _, spec in INTERP_COLUMNS
    ]
    return [*rows, ["pixel cross-fade (no model)", *pixel]]


def representation_section(doc: Doc, s: StudyResult) -> None:
    doc.h(2, "7. Representation usefulness", "representation")
    doc.table(
        ["run", "linear probe", "5-NN"],
        [
            [
                name,
                _probe(doc, name, keys.PROBE_LINEAR),
                _probe(doc, name, keys.PROBE_KNN),
            ]
            for name in s.run_order
            if name in s.representation  # trials with the selection evaluation: no probes
        ],
    )
    doc.p(
        f"Probes fit on {doc.ev('ae', keys.PROBE_N_TRAIN, 'd')} train codes (μ), scored on "
        "the test codes: multinomial logistic regression (L-BFGS, standardised codes) and "
        "5-nearest neighbours."
    )


def all_runs_section(doc: Doc, s: StudyResult) -> None:
    doc.h(2, "8. All runs", "runs")
    cols = [
        keys.TEST_SSE,
        keys.TEST_KL,
        keys.SAMPLES_FD,
        keys.SAMPLES_PRECISION,
        keys.SAMPLES_RECALL,
        keys.SAMPLES_CLASS_ENTROPY,
        keys.PROBE_LINEAR,
    ]
    rows = []
    for name in s.run_order:
        r = s.runs[name]
        rows.append(
            [
                name,
                r.model,
                f"{r.beta:g}" if r.model == "vae" else "–",
                str(r.epochs),
                _train(doc, name, "train_time_s", ".0f"),
                _train(doc, name, "val/loss", ".4g"),
            ]
            + [doc.ev(name, k, METRICS[k][1]) if k in r.eval else "–" for k in cols]
        )
    doc.table(
        ["run", "model", "β", "epochs", "train s", "val loss"] + [METRICS[k][0] for k in cols], rows
    )


# ---- the questions --------------------------------------------------------------------------
def answers(doc: Doc, s: StudyResult) -> None:
    doc.h(2, "The study's questions, answered from this run", "answers")
    q_ae_samples(doc, s)
    q_beta0(doc, s)
    q_beta10(doc, s)
    q_tuned(doc, s)
    q_interpolation(doc, s)


def _pr(doc: Doc, name: str) -> str:
    precision = doc.ev(name, keys.SAMPLES_PRECISION, ".2f")
    recall = doc.ev(name, keys.SAMPLES_RECALL, ".2f")
    return f"precision {precision}, recall {recall}"


def _pr_reading(s: StudyResult, name: str) -> str:
    """What a run's sample precision and recall say, each judged against its floor."""
    e = s.runs[name].eval
    low_p = e[keys.SAMPLES_PRECISION] < PR_LOW_SHARE * e[keys.FLOOR_PRECISION]
    low_r = e[keys.SAMPLES_RECALL] < PR_LOW_SHARE * e[keys.FLOOR_RECALL]
    if low_p and low_r:
        return "most samples are unlike real digits, and most kinds of real digits are never made"
    if low_p:
        return "samples are blurry or otherwise unlike real digits, though of every kind"
    if low_r:
        return "samples look real but cover only some kinds of real digits"
    return "samples are realistic and cover the kinds of real digits, by this measure"


def _ae_codes_text(doc: Doc, s: StudyResult) -> tuple[str, str]:
    """Where the AE's codes lie against the prior: (their scale, whether prior samples land
    among them), in words."""
    ae, tuned = s.code_stats["ae"], s.code_stats[s.tuned]
    norm_ratio = ae.norm_mean / s.baselines.prior_norm
    prior_scale = (
        PRIOR_NORM_BAND[0] < norm_ratio < PRIOR_NORM_BAND[1]
        and ae.dim_std_min > PRIOR_STD_BAND[0]
        and ae.dim_std_max < PRIOR_STD_BAND[1]
    )
    scale = (
        "Their scale even resembles the prior's, so the mismatch is one of shape, not size: "
        if prior_scale
        else "Their scale already differs from the prior's, and "
    )
    where = (
        "prior samples fall off the set of codes the decoder was trained on"
        if ae.prior_nn_ratio > OFF_MANIFOLD_FACTOR * tuned.prior_nn_ratio
        else "yet, contrary to the expected story, prior samples sit no farther from the AE's "
        "codes than from the VAE's"
    )
    return scale, where


def q_ae_samples(doc: Doc, s: StudyResult) -> None:
    cite, ev, tuned = doc.cite, doc.ev, s.tuned
    ae_fd, t_fd = s.runs["ae"].eval[keys.SAMPLES_FD], s.runs[tuned].eval[keys.SAMPLES_FD]
    verdict = (
        f"about {_ratio(ae_fd, t_fd):.1f}× the tuned VAE's {ev(tuned, keys.SAMPLES_FD)}"
        if ae_fd > t_fd
        else f"which, contrary to the expected story, is no worse than the tuned VAE's "
        f"{ev(tuned, keys.SAMPLES_FD)}"
    )
    scale, where = _ae_codes_text(doc, s)
    ae_sse = s.runs["ae"].eval[keys.TEST_SSE]
    sharpest = ae_sse <= min(r.eval[keys.TEST_SSE] for r in s.runs.values())
    doc.h(3, "Why do AE prior samples look the way they do?")
    doc.p(
        f"The AE is trained only to reconstruct, so nothing makes N(0, I) a model of its codes. "
        f"Its test codes have mean norm {cite(lambda s: s.code_stats['ae'].norm_mean)} (samples "
        f"of N(0, I) in {s.config.latent_dim} dimensions: ≈ "
        f"{cite(lambda s: s.baselines.prior_norm)}) and per-dimension standard deviations from "
        f"{cite(lambda s: s.code_stats['ae'].dim_std_min)} to "
        f"{cite(lambda s: s.code_stats['ae'].dim_std_max)}. {scale}the nearest test code to a "
        f"prior sample is {cite(lambda s: s.code_stats['ae'].prior_nn_ratio, '.2f')}× as far as "
        f"the nearest test code to another test code (tuned VAE: "
        f"{cite(lambda s: s.code_stats[tuned].prior_nn_ratio, '.2f')}×; codes are those "
        f"the decoder trained on: μ for the AE, z ~ q(z|x) for the VAE), so {where}. "
        f"Measured on the samples: their Fréchet distance to the test set is "
        f"{ev('ae', keys.SAMPLES_FD)}, {verdict} (floor, real train vs test: "
        f"{ev('ae', keys.FLOOR_FD)}); {_pr(doc, 'ae')} (tuned VAE: "
        f"{_pr(doc, tuned)}; real train vs test: {ev('ae', keys.FLOOR_PRECISION, '.2f')}, "
        f"{ev('ae', keys.FLOOR_RECALL, '.2f')}); the classifier's mean confidence on them is "
        f"{ev('ae', keys.SAMPLES_CONFIDENCE)} (real images: {ev('ae', keys.REAL_CONFIDENCE)}) "
        f"and their class entropy {ev('ae', keys.SAMPLES_CLASS_ENTROPY)} nats. "
        + (
            f"Yet its reconstructions are the sharpest of all runs (SSE "
            f"{ev('ae', keys.TEST_SSE)} per image): the decoder is good, the prior is wrong for "
            "it."
            if sharpest
            else f"Its reconstructions are sharp (SSE {ev('ae', keys.TEST_SSE)} per image): the "
            "decoder is good, the prior is wrong for it."
        )
    )


def q_beta0(doc: Doc, s: StudyResult) -> None:
    ev, tuned = doc.ev, s.tuned
    ae, b0, t = s.runs["ae"].eval, s.runs["vae_beta0"].eval, s.runs[tuned].eval
    recon0 = (
        "AE-like"
        if b0[keys.TEST_SSE] < AE_LIKE_SSE_FACTOR * ae[keys.TEST_SSE]
        else "clearly worse than the AE's at this schedule"
    )
    story = (
        "so, like the AE's, its prior samples are not digit-like"
        if b0[keys.SAMPLES_FD] > t[keys.SAMPLES_FD]
        else "yet, contrary to the expected story, its prior samples score no worse than the "
        "tuned VAE's"
    )
    doc.h(3, "What does β = 0 do, and why?")
    doc.p(
        f"With β = 0 the KL term is absent, so nothing pulls q(z|x) towards the prior: the "
        f"encoder spreads and sharpens its posteriors at will. KL(q‖p) grew to "
        f"{ev('vae_beta0', keys.TEST_KL)} nats per image "
        f"({_ratio(b0[keys.TEST_KL], t[keys.TEST_KL]):.0f}× the tuned VAE's "
        f"{ev(tuned, keys.TEST_KL)}), reconstructions are {recon0} (SSE "
        f"{ev('vae_beta0', keys.TEST_SSE)}; AE {ev('ae', keys.TEST_SSE)}), and prior samples "
        f"have Fréchet distance {ev('vae_beta0', keys.SAMPLES_FD)} (AE "
        f"{ev('ae', keys.SAMPLES_FD)}, tuned VAE {ev(tuned, keys.SAMPLES_FD)}), "
        f"{_pr(doc, 'vae_beta0')} and classifier confidence "
        f"{ev('vae_beta0', keys.SAMPLES_CONFIDENCE)}, {story}. The model is a noisy "
        "auto-encoder, not a generative model."
    )


def _beta10_text(s: StudyResult) -> str:
    """Whether β = 10 collapsed the posterior, in words."""
    b10 = s.runs["vae_beta10"].eval
    kl10, sse10 = b10[keys.TEST_KL], b10[keys.TEST_SSE]
    if b10[keys.TEST_ACTIVE_UNITS] == 0 or (
        kl10 < COLLAPSE_KL_NATS and sse10 > COLLAPSE_SSE_SHARE * s.baselines.mean_image_sse
    ):
        return (
            "the posterior has collapsed: q(z|x) ≈ N(0, I) for every image, z carries almost "
            "no information, and the decoder outputs nearly the same average digit whatever "
            "the input"
        )
    if kl10 < PARTIAL_COLLAPSE_KL_SHARE * s.runs[s.tuned].eval[keys.TEST_KL]:
        return (
            "the posterior has partly collapsed: z carries little information, so "
            "reconstructions are blurry prototypes rather than the input digits"
        )
    return (
        "contrary to the expected story, the posterior did not collapse at this "
        "schedule: z still carries information"
    )


def q_beta10(doc: Doc, s: StudyResult) -> None:
    ev, b10 = doc.ev, "vae_beta10"
    doc.h(3, "What does β = 10 do, and why?")
    doc.p(
        f"A KL weight of 10 makes every nat of information in z cost ten times its "
        f"reconstruction value, so the optimum gives up on encoding: KL is "
        f"{ev(b10, keys.TEST_KL)} nats per image with {ev(b10, keys.TEST_ACTIVE_UNITS, 'd')} "
        f"active units, and the reconstruction error is {ev(b10, keys.TEST_SSE)} per image — "
        f"predicting the mean training image scores "
        f"{doc.cite(lambda s: s.baselines.mean_image_sse)}, the AE "
        f"{ev('ae', keys.TEST_SSE)}. So {_beta10_text(s)}. The classifier recognises "
        f"{ev(b10, keys.RECON_ACCURACY, '.1%')} of its reconstructions (AE: "
        f"{ev('ae', keys.RECON_ACCURACY, '.1%')}); its samples have class entropy "
        f"{ev(b10, keys.SAMPLES_CLASS_ENTROPY)} nats (ln 10 = 2.303) and "
        f"{_pr(doc, b10)}: {_pr_reading(s, b10)}."
    )


def _tuned_texts(s: StudyResult) -> tuple[str, str, str, str]:
    """The tuned VAE in words: (fallback note, place among course results, its
    reconstructions, its samples)."""
    c, search = s.config, s.search
    ae, t = s.runs["ae"].eval, s.runs[s.tuned].eval
    fallback = (
        " No β met both thresholds, so this is the fallback choice; treat it with care."
        if search.fallback
        else ""
    )
    lo, hi = COURSE_BETA_RANGE
    ref = ("inside" if lo <= search.chosen_beta <= hi else "outside") + (
        f" the range {lo:g}–{hi:g} that course solutions reached once converted to these units"
    )
    recon_text = (
        "keep the identity of the input"
        if t[keys.RECON_ACCURACY] >= c.min_recon_accuracy
        else "do not reliably keep the identity of the input"
    )
    good_samples = (
        t[keys.SAMPLES_CLASS_ENTROPY] >= c.min_class_entropy
        and t[keys.SAMPLES_FD] < ae[keys.SAMPLES_FD]
    )
    sample_text = (
        "clear and diverse, and closer to real digits than the AE's"
        if good_samples
        else "not yet clear and diverse by these measures"
    )
    return fallback, ref, recon_text, sample_text


def q_tuned(doc: Doc, s: StudyResult) -> None:
    ev, t = doc.ev, s.tuned
    fallback, ref, recon_text, sample_text = _tuned_texts(s)
    doc.h(3, "What does a well-tuned VAE look like, and which β was chosen?")
    doc.p(
        f"β = {doc.cite(lambda s: s.search.chosen_beta, 'g')} was chosen: {s.search.reason}."
        f"{fallback} This is {ref}. Its reconstructions {recon_text} (the classifier recognises "
        f"{ev(t, keys.RECON_ACCURACY, '.1%')}; SSE {ev(t, keys.TEST_SSE)} per image "
        f"against the AE's {ev('ae', keys.TEST_SSE)}: the KL term trades sharpness for a smooth, "
        f"prior-matched code), and its prior samples are {sample_text}: Fréchet distance "
        f"{ev(t, keys.SAMPLES_FD)} (AE {ev('ae', keys.SAMPLES_FD)}, floor "
        f"{ev('ae', keys.FLOOR_FD)}), {_pr(doc, t)} (AE "
        f"{_pr(doc, 'ae')}; so {_pr_reading(s, t)}), classifier confidence "
        f"{ev(t, keys.SAMPLES_CONFIDENCE)}, class "
        f"entropy {ev(t, keys.SAMPLES_CLASS_ENTROPY)} nats. It uses "
        f"{ev(t, keys.TEST_ACTIVE_UNITS, 'd')} of {s.config.latent_dim} latent units at KL "
        f"{ev(t, keys.TEST_KL)} nats; its importance-weighted NLL is "
        f"{ev(t, keys.TEST_IW_NLL, '.2f')} nats against a negative ELBO of "
        f"{ev(t, keys.TEST_NEG_ELBO_SAME_IMAGES, '.2f')} on the same images."
    )


def _realism_verdict(ae: float, vae: float, pixel: float) -> str:
    """Which model's interpolations stay closer to real digits (realism medians)."""
    if vae < ae - REALISM_MARGIN:
        verdict = (
            "the VAE's paths stay closer to real digits: its in-between images look more like "
            "handwritten digits, while the AE's drift further from anything in the data"
        )
    elif ae < vae - REALISM_MARGIN:
        verdict = (
            "contrary to the expected story, the AE's paths stay closer to real digits than "
            "the VAE's here"
        )
    else:
        verdict = "the two are about equally realistic: the expected difference is absent here"
    if min(ae, vae) > pixel + REALISM_MARGIN:
        verdict += (
            "; both are less realistic than a plain pixel cross-fade, a sign of models too "
            "undertrained to decode digits between codes"
        )
    return verdict


def _lerp(name: str) -> str:
    return interp_key("lerp", name)


def _confidence_text(ae_dip: float, vae_dip: float) -> str:
    """Which model's paths the classifier reads more confidently (lowest point per path)."""
    if vae_dip > ae_dip + CONFIDENCE_MARGIN:
        return "the classifier reads the VAE's paths more confidently"
    if ae_dip > vae_dip + CONFIDENCE_MARGIN:
        return (
            "the classifier reads the AE's paths more confidently, which says only that its "
            "decodes are sharp: an overlay of two sharp digits is often named confidently"
        )
    return "the classifier reads both about equally confidently"


def q_interpolation(doc: Doc, s: StudyResult) -> None:
    ev, tuned = doc.ev, s.tuned
    ae, t = s.runs["ae"].eval, s.runs[tuned].eval
    verdict = _realism_verdict(
        ae[_lerp("realism_median")],
        t[_lerp("realism_median")],
        ae[interp_key("pixel", "realism_median")],
    )
    conf = _confidence_text(ae[_lerp("min_conf")], t[_lerp("min_conf")])
    rep = s.representation
    better = (
        "the VAE's" if rep[tuned][keys.PROBE_LINEAR] > rep["ae"][keys.PROBE_LINEAR] else "the AE's"
    )

    def r2(run: str, name: str) -> str:
        return ev(run, _lerp(name), ".2f")

    doc.h(3, "How do AE and VAE interpolations differ, and what does it mean downstream?")
    doc.p(
        f"Along linear paths between test images ({_pair_text()}), the "
        f"decoded in-between images have median realism {r2('ae', 'realism_median')} for the "
        f"AE and {r2(tuned, 'realism_median')} for the tuned VAE (90th percentile "
        f"{r2('ae', 'realism_p90')} vs {r2(tuned, 'realism_p90')}; least realistic point per "
        f"path {r2('ae', 'realism_worst')} vs {r2(tuned, 'realism_worst')}; a pixel cross-fade "
        f"between the same images scores "
        f"{ev('ae', interp_key('pixel', 'realism_median'), '.2f')}, and decodes of real codes, "
        f"the reconstructions, {ev('ae', keys.RECON_REALISM_MEDIAN, '.2f')} and "
        f"{ev(tuned, keys.RECON_REALISM_MEDIAN, '.2f')}): {verdict}. Realism is the "
        "distance in the reference classifier's features to the nearest real test image, "
        "in units of the typical distance between two real images: about 1 for a real digit, "
        f"higher for images off the data. Confidence (the classifier's top probability, lowest "
        f"point per path {ev('ae', _lerp('min_conf'))} vs {ev(tuned, _lerp('min_conf'))}) "
        f"measures how decisively a digit is named, not whether it looks real: {conf}. "
        f"Smoothness (pixel path length relative to a straight fade, 1 = even) is "
        f"{ev('ae', _lerp('path_length_ratio'))} for the AE and "
        f"{ev(tuned, _lerp('path_length_ratio'))} for the VAE. Downstream, {better} embedding "
        f"is the more linearly useful one: linear probe {_probe(doc, 'ae', keys.PROBE_LINEAR)} "
        f"(AE) vs {_probe(doc, tuned, keys.PROBE_LINEAR)} (VAE), 5-NN "
        f"{_probe(doc, 'ae', keys.PROBE_KNN)} vs {_probe(doc, tuned, keys.PROBE_KNN)}. A VAE's "
        "codes are organised so that neighbourhoods and straight lines in z mean something (the "
        "KL term packs them around the prior); an AE's are free to be anywhere the decoder can "
        "read them, which is enough for reconstruction but gives no guarantee between codes."
    )


# ---- writing ----------------------------------------------------------------------------------
def precision_recall_figure(root: Path, s: StudyResult) -> Path:
    """figures/beta_precision_recall.png from the β-search trials in study.json."""
    betas = s.search.trials
    trial = [s.runs[s.search.trial_run(b)].eval for b in betas]
    floor = trial[0]  # the trials' own floor: precision/recall depend on the set size
    return figures.xy_lines(
        root / "figures" / "beta_precision_recall.png",
        betas,
        {
            "precision (samples realistic)": [e[keys.SAMPLES_PRECISION] for e in trial],
            "recall (real images covered)": [e[keys.SAMPLES_RECALL] for e in trial],
        },
        "Precision and recall of prior samples vs β",
        "β",
        "share (k-NN manifold, classifier features)",
        hlines=[
            (floor[keys.FLOOR_PRECISION], "floor precision: real train vs test"),
            (floor[keys.FLOOR_RECALL], "floor recall"),
        ],
        mark=s.search.chosen_beta,
    )


def write_report(root: Path, study: StudyResult) -> tuple[Path, Path]:
    """Draw the report's own figures (summary panel, precision/recall vs β), then write
    report.md and report.html."""
    write_summary_panel(root, study)
    precision_recall_figure(root, study)
    doc = build(root, study)
    title = f"vaelab study ({study.config.preset})"
    md = atomic_write_text(root / "report.md", doc.markdown())
    page = atomic_write_text(root / "report.html", doc.html(title))
    return md, page
