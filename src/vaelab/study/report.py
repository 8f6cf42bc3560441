"""The study report: report.md and report.html from study.json, with answers generated from it.

The report opens with one summary figure (samples, interpolations, rate–distortion), then
answers the study's questions, then shows every stage. Each section and each question is one
function; every number in the text cites a study.json path (see vaelab.study.render), and every
judgement in the wording rests on a named threshold below. Figures use relative paths: the
report opens from any folder, with no network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vaelab import figures
from vaelab.evaluation import EvalConfig
from vaelab.fsutil import atomic_write_text
from vaelab.study import faq
from vaelab.study.render import SEP, Doc, fmt, resolve
from vaelab.study.selection import criterion_text
from vaelab.study.summary import run_label, write_summary_panel

__all__ = ["METRICS", "build", "fmt", "resolve", "write_report"]

# key -> (label, format): the one table for every place the report shows a run's metric.
METRICS: dict[str, tuple[str, str]] = {
    "test/sse": ("SSE / image", ".4g"),
    "test/mse": ("MSE / pixel", ".4g"),
    "test/kl": ("KL (nats)", ".4g"),
    "test/elbo": ("ELBO (nats)", ".2f"),
    "test/iw_nll": ("IW-NLL (nats)", ".2f"),
    "test/active_units": ("active units", "d"),
    "samples/fd": ("sample FD", ".4g"),
    "samples/precision": ("precision", ".3f"),
    "samples/recall": ("recall", ".3f"),
    "recon/fd": ("recon FD", ".4g"),
    "samples/class_entropy": ("class entropy", ".3f"),
    "samples/confidence": ("confidence", ".3f"),
    "recon/classifier_accuracy": ("recon acc", ".3f"),
    "interp/lerp/realism_median": ("lerp realism", ".3f"),
    "probe/linear_acc": ("linear probe", ".4f"),
    "probe/knn_acc": ("5-NN", ".4f"),
}
VAE_ONLY = ("test/kl", "test/elbo", "test/iw_nll", "test/active_units")

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


def _ev(name: str) -> str:
    """The study.json path prefix of a run's eval.json keys."""
    return f"runs{SEP}{name}{SEP}eval{SEP}"


def build(root: Path, s: dict[str, Any]) -> Doc:
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
    beta = s["search"]["chosen_beta"]
    run_section(doc, root, s, s["tuned"], f"5. The tuned VAE (β = {beta:g})", full=True)
    interpolation_section(doc, root, s)
    representation_section(doc, s)
    all_runs_section(doc, s)
    faq.units_section(doc, s)
    return doc


# ---- sections -------------------------------------------------------------------------------
def summary(doc: Doc, root: Path, s: dict[str, Any]) -> None:
    """Title, the summary panel (the first figure of the page), then one line of context."""
    c = s["config"]
    doc.h(1, f"vaelab study: AE and β-VAE on {c['dataset']} ({c['preset']} preset)")
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
        f"Chosen β = {doc.cite('search::chosen_beta', 'g')} (per-image SSE + β·KL, see Units "
        f"and FAQ). Wall time {doc.cite('wall_time_s', '.0f')} s; {len(s['runs'])} training "
        "runs in `runs/`. Every number below is read from `study.json` in this folder."
    )
    doc.p(
        f"Explore the AE and the tuned VAE (`runs/ae`, `runs/{s['tuned']}`) in the browser: "
        f"`vaelab explore {c['out']}` (latent maps, live decodes, interpolations, sliders, "
        'prior samples, draw a digit; README "Explore a model").'
    )


def reproduce_section(doc: Doc, s: dict[str, Any]) -> None:
    c, env = s["config"], s["env"]
    doc.h(2, "How to reproduce", "reproduce")
    doc.code(
        f"make study            # or: vaelab study --preset {c['preset']} --dataset "
        f"{c['dataset']} --out {c['out']}"
    )
    doc.table(
        ["item", "value"],
        [
            ["vaelab", str(env["vaelab"])],
            ["git commit", str(env.get("git_commit"))],
            ["python / torch / numpy", f"{env['python']} / {env['torch']} / {env['numpy']}"],
            [
                "device",
                f"{env['device']} ({env.get('gpu', env['processor'])}, "
                f"{env['cpu_count']} CPUs, {env['torch_threads']} torch threads)",
            ],
            ["seed", f"{c['seed']} (every run; evaluation seed {c['seed']})"],
            [
                "reference classifier",
                f"{s['classifier']['variant']}, test accuracy "
                f"{doc.cite('classifier::test_accuracy', '.4f')}",
            ],
        ],
    )
    doc.table(
        ["stage", "wall time this session (s)"],
        [[k, doc.cite(f"stage_time_s{SEP}{k}", ".1f")] for k in s["stage_order"]],
    )
    doc.p(
        f"Compute in the runs (training + evaluation, summed over sessions): "
        f"{doc.cite('compute_time_s', '.0f')} s. Re-running the command reuses finished runs "
        "and resumes unfinished ones."
    )


def data_section(doc: Doc, root: Path, s: dict[str, Any]) -> None:
    c, splits = s["config"], s["data"]["splits"]
    doc.h(2, "1. Data", "data")
    doc.table(
        ["split", "images", "label counts", "pixel mean"],
        [
            [k, str(v["count"]), " ".join(map(str, v["label_counts"])), f"{v['pixel_mean']:.4f}"]
            for k, v in splits.items()
        ],
    )
    doc.p(
        f"Source: {s['data']['source']}. Training runs use "
        f"{c['limit_train'] or splits['train']['count']} train images; evaluation uses the "
        f"first {c['eval_limit'] or splits['test']['count']} test images."
    )
    _fig(doc, root, "figures/data_strip.png", "The first 16 training images.")


def run_section(
    doc: Doc, root: Path, s: dict[str, Any], name: str, title: str, full: bool = False
) -> None:
    r = s["runs"][name]
    doc.h(2, title, name)
    keys = [k for k in METRICS if (r["model"] == "vae" or k not in VAE_ONLY) and k in r["eval"]]
    doc.table(
        ["metric", "value"], [[METRICS[k][0], doc.cite(_ev(name) + k, METRICS[k][1])] for k in keys]
    )
    d = r["dir"]
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
    "test/sse",
    "test/kl",
    "test/elbo",
    "test/iw_nll",
    "samples/fd",
    "samples/precision",
    "samples/recall",
    "recon/fd",
    "samples/class_entropy",
    "samples/confidence",
    "recon/classifier_accuracy",
    "test/active_units",
    "probe/linear_acc",
]


def search_section(doc: Doc, root: Path, s: dict[str, Any]) -> None:
    """Section 4: the criterion, the search rule, every trial, (halving) every later rung, how
    trials were evaluated, and the trade-off figures."""
    c, search = s["config"], s["search"]
    doc.h(2, "4. β search", "search")
    doc.p(
        f"Selection criterion: {criterion_text(c['min_recon_accuracy'], c['min_class_entropy'])}"
        f". Search: {'; '.join(search['log'])}. Result: {search['reason']}."
    )
    if search.get("method") == "halving":
        doc.p(f"Search rule: {search['rule']}.")
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


def _trial_rows(doc: Doc, s: dict[str, Any]) -> list[list[str]]:
    search, rows = s["search"], []
    for b in search["trials"]:
        name = search["trial_runs"][f"{b:g}"]
        ev = s["runs"][name]["eval"]
        mark = (
            " (chosen)"
            if b == search["chosen_beta"]
            else (" (eligible)" if b in search["eligible"] else "")
        )
        cells = [doc.cite(_ev(name) + k, METRICS[k][1]) if k in ev else "–" for k in SEARCH_METRICS]
        rows.append([f"{b:g}{mark}", *cells])  # "–": not part of this run's evaluation
    return rows


def _rung_tables(doc: Doc, s: dict[str, Any]) -> None:
    """Successive halving: one table per rung after the first (the first is the trial table)."""
    keys = ("samples/fd", "samples/class_entropy", "recon/classifier_accuracy")
    for rung in s["search"].get("rungs", [])[1:]:
        doc.table(
            [f"rung {rung['rung']} ({rung['epochs']} epochs on {rung['limit_train']} images): β"]
            + [METRICS[k][0] for k in keys[:2]]
            + ["recon accuracy"],
            [
                [b] + [doc.cite(_ev(name) + k, METRICS[k][1]) for k in keys]
                for b, name in rung["runs"].items()
            ],
        )


def _search_units(doc: Doc, s: dict[str, Any]) -> None:
    c, search = s["config"], s["search"]
    first = _ev(search["trial_runs"][f"{search['trials'][0]:g}"])
    sized = ""
    if "selection_limit" in c:
        full = [n for n in s["run_order"] if s["runs"][n].get("evaluation", "full") == "full"]
        sized = (
            "Evaluation sized to the decision: trials got the selection evaluation "
            f"(reconstruction accuracy and rate/distortion on {c['selection_limit']} test "
            f"images, FD, precision/recall and class entropy of {c['selection_samples']} prior "
            "samples; FD grows and the k-NN measures change as the sample count shrinks, so "
            f"trial values compare with each other only); {', '.join(full)} got the full one "
            f"({c['n_samples']} prior samples, IW-NLL with K = {c['iw_samples']}, probes, "
            "interpolations, all figures). "
        )
    doc.p(
        sized + "Units: SSE per image; KL, ELBO and IW-NLL in nats per image (IW-NLL: "
        f"importance-weighted with K = {c['iw_samples']} on {c['iw_limit'] or 'all'} test "
        "images, a continuous density on dequantised pixels for this Gaussian decoder with "
        "σ² = ½); FD = Fréchet distance of reference-classifier features; precision and recall "
        f"with k = {doc.cite(first + 'samples/pr_k', 'g')} nearest neighbours on "
        f"{doc.cite(first + 'samples/pr_n', 'g')} images per set. Floors for the trials (real "
        f"train vs test at the same set size): FD {doc.cite(first + 'floor/fd_train_vs_test')}"
        f", precision {doc.cite(first + 'floor/precision', '.3f')}, recall "
        f"{doc.cite(first + 'floor/recall', '.3f')}."
    )


INTERP_COLUMNS = [
    ("realism_median", "realism, median", ".3f"),
    ("realism_p90", "realism, 90th pct", ".3f"),
    ("realism_worst", "realism, worst per path", ".3f"),
    ("mean_conf", "mean confidence", ".3f"),
    ("min_conf", "lowest confidence", ".3f"),
    ("path_length_ratio", "path length / straight", ".3f"),
]


def interpolation_section(doc: Doc, root: Path, s: dict[str, Any]) -> None:
    doc.h(2, "6. Interpolation: AE vs tuned VAE", "interpolation")
    for a, b in INTERP.pairs:
        _fig(
            doc,
            root,
            f"figures/interp_compare_{a}to{b}.png",
            f"{a}→{b}: rows alternate AE and tuned VAE, lerp then slerp; the ends are the real "
            "test images.",
        )
    tuned = s["runs"][s["tuned"]]
    for run, label in ((s["runs"]["ae"], "AE"), (tuned, "tuned " + run_label(tuned))):
        _fig(
            doc,
            root,
            f"{run['dir']}/figures/interp_realism.png",
            f"{label}: realism of the in-between images along lerp and slerp paths and along a "
            "pixel cross-fade of the same end images (1 ≈ a held-out real image).",
        )
    _fig(
        doc,
        root,
        "figures/interp_confidence_compare.png",
        f"Classifier confidence along the paths (mean over {_n_paths()} paths, band = min–max).",
    )
    rows = []
    for name, label in (("ae", "AE"), (s["tuned"], "tuned " + run_label(tuned))):
        for mode in ("lerp", "slerp"):
            rows.append(
                [f"{label}, {mode}"]
                + [
                    doc.cite(f"{_ev(name)}interp/{mode}/{key}", spec)
                    for key, _, spec in INTERP_COLUMNS
                ]
            )
    rows.append(
        ["pixel cross-fade (no model)"]
        + [
            doc.cite(f"{_ev('ae')}interp/pixel/{key}", spec)
            if f"interp/pixel/{key}" in s["runs"]["ae"]["eval"]
            else "–"
            for key, _, spec in INTERP_COLUMNS
        ]
    )
    doc.table(["model, path"] + [label for _, label, _ in INTERP_COLUMNS], rows)
    doc.p(faq.INTERPOLATION_MEASURES)


def representation_section(doc: Doc, s: dict[str, Any]) -> None:
    doc.h(2, "7. Representation usefulness", "representation")
    doc.table(
        ["run", "linear probe", "5-NN"],
        [
            [
                name,
                doc.cite(f"representation{SEP}{name}{SEP}probe/linear_acc", ".4f"),
                doc.cite(f"representation{SEP}{name}{SEP}probe/knn_acc", ".4f"),
            ]
            for name in s["run_order"]
            if name in s["representation"]  # trials with the selection evaluation: no probes
        ],
    )
    doc.p(
        f"Probes fit on {doc.cite(_ev('ae') + 'probe/n_train', 'd')} train codes (μ), scored on "
        "the test codes: multinomial logistic regression (L-BFGS, standardised codes) and "
        "5-nearest neighbours."
    )


def all_runs_section(doc: Doc, s: dict[str, Any]) -> None:
    doc.h(2, "8. All runs", "runs")
    cols = [
        "test/sse",
        "test/kl",
        "samples/fd",
        "samples/precision",
        "samples/recall",
        "samples/class_entropy",
        "probe/linear_acc",
    ]
    rows = []
    for name in s["run_order"]:
        r = s["runs"][name]
        rows.append(
            [
                name,
                r["model"],
                f"{r['beta']:g}" if r["model"] == "vae" else "–",
                str(r["epochs"]),
                doc.cite(f"runs{SEP}{name}{SEP}train{SEP}train_time_s", ".0f"),
                doc.cite(f"runs{SEP}{name}{SEP}train{SEP}val/loss", ".4g"),
            ]
            + [doc.cite(_ev(name) + k, METRICS[k][1]) if k in r["eval"] else "–" for k in cols]
        )
    doc.table(
        ["run", "model", "β", "epochs", "train s", "val loss"] + [METRICS[k][0] for k in cols], rows
    )


# ---- the questions --------------------------------------------------------------------------
def answers(doc: Doc, s: dict[str, Any]) -> None:
    doc.h(2, "The study's questions, answered from this run", "answers")
    q_ae_samples(doc, s)
    q_beta0(doc, s)
    q_beta10(doc, s)
    q_tuned(doc, s)
    q_interpolation(doc, s)


def _pr(doc: Doc, name: str) -> str:
    e = _ev(name)
    precision, recall = (
        doc.cite(e + "samples/precision", ".2f"),
        doc.cite(e + "samples/recall", ".2f"),
    )
    return f"precision {precision}, recall {recall}"


def _pr_reading(s: dict[str, Any], name: str) -> str:
    """What a run's sample precision and recall say, each judged against its floor."""
    e = s["runs"][name]["eval"]
    low_p = e["samples/precision"] < PR_LOW_SHARE * e["floor/precision"]
    low_r = e["samples/recall"] < PR_LOW_SHARE * e["floor/recall"]
    if low_p and low_r:
        return "most samples are unlike real digits, and most kinds of real digits are never made"
    if low_p:
        return "samples are blurry or otherwise unlike real digits, though of every kind"
    if low_r:
        return "samples look real but cover only some kinds of real digits"
    return "samples are realistic and cover the kinds of real digits, by this measure"


def q_ae_samples(doc: Doc, s: dict[str, Any]) -> None:
    v, cite, tuned = doc.v, doc.cite, s["tuned"]
    ae, t, cs = _ev("ae"), _ev(tuned), f"code_stats{SEP}"
    ae_fd, t_fd = v(ae + "samples/fd"), v(t + "samples/fd")
    verdict = (
        f"about {_ratio(ae_fd, t_fd):.1f}× the tuned VAE's {cite(t + 'samples/fd')}"
        if ae_fd > t_fd
        else f"which, contrary to the expected story, is no worse than the tuned VAE's "
        f"{cite(t + 'samples/fd')}"
    )
    norm_ratio = v(cs + "ae::norm_mean") / s["baselines"]["prior_norm"]
    prior_scale = (
        PRIOR_NORM_BAND[0] < norm_ratio < PRIOR_NORM_BAND[1]
        and v(cs + "ae::dim_std_min") > PRIOR_STD_BAND[0]
        and v(cs + "ae::dim_std_max") < PRIOR_STD_BAND[1]
    )
    scale = (
        "Their scale even resembles the prior's, so the mismatch is one of shape, not size: "
        if prior_scale
        else "Their scale already differs from the prior's, and "
    )
    off = v(cs + "ae::prior_nn_ratio") > OFF_MANIFOLD_FACTOR * v(cs + tuned + "::prior_nn_ratio")
    where = (
        "prior samples fall off the set of codes the decoder was trained on"
        if off
        else "yet, contrary to the expected story, prior samples sit no farther from the AE's "
        "codes than from the VAE's"
    )
    sharpest = v(ae + "test/sse") <= min(r["eval"]["test/sse"] for r in s["runs"].values())
    doc.h(3, "Why do AE prior samples look the way they do?")
    doc.p(
        f"The AE is trained only to reconstruct, so nothing makes N(0, I) a model of its codes. "
        f"Its test codes have mean norm {cite(cs + 'ae::norm_mean')} (samples of N(0, I) in "
        f"{s['config']['latent_dim']} dimensions: ≈ {cite('baselines::prior_norm')}) and "
        f"per-dimension standard deviations from {cite(cs + 'ae::dim_std_min')} to "
        f"{cite(cs + 'ae::dim_std_max')}. {scale}the nearest test code to a prior sample is "
        f"{cite(cs + 'ae::prior_nn_ratio', '.2f')}× as far as the nearest test code to another "
        f"test code (tuned VAE: {cite(cs + tuned + '::prior_nn_ratio', '.2f')}×; codes are those "
        f"the decoder trained on: μ for the AE, z ~ q(z|x) for the VAE), so {where}. "
        f"Measured on the samples: their Fréchet distance to the test set is "
        f"{cite(ae + 'samples/fd')}, {verdict} (floor, real train vs test: "
        f"{cite(ae + 'floor/fd_train_vs_test')}); {_pr(doc, 'ae')} (tuned VAE: "
        f"{_pr(doc, tuned)}; real train vs test: {cite(ae + 'floor/precision', '.2f')}, "
        f"{cite(ae + 'floor/recall', '.2f')}); the classifier's mean confidence on them is "
        f"{cite(ae + 'samples/confidence')} (real images: {cite(ae + 'real/confidence')}) and "
        f"their class entropy {cite(ae + 'samples/class_entropy')} nats. "
        + (
            f"Yet its reconstructions are the sharpest of all runs (SSE "
            f"{cite(ae + 'test/sse')} per image): the decoder is good, the prior is wrong for it."
            if sharpest
            else f"Its reconstructions are sharp (SSE {cite(ae + 'test/sse')} per image): the "
            "decoder is good, the prior is wrong for it."
        )
    )


def q_beta0(doc: Doc, s: dict[str, Any]) -> None:
    v, cite = doc.v, doc.cite
    ae, b0, t = _ev("ae"), _ev("vae_beta0"), _ev(s["tuned"])
    kl0, klt = v(b0 + "test/kl"), v(t + "test/kl")
    recon0 = (
        "AE-like"
        if v(b0 + "test/sse") < AE_LIKE_SSE_FACTOR * v(ae + "test/sse")
        else "clearly worse than the AE's at this schedule"
    )
    story = (
        "so, like the AE's, its prior samples are not digit-like"
        if v(b0 + "samples/fd") > v(t + "samples/fd")
        else "yet, contrary to the expected story, its prior samples score no worse than the "
        "tuned VAE's"
    )
    doc.h(3, "What does β = 0 do, and why?")
    doc.p(
        f"With β = 0 the KL term is absent, so nothing pulls q(z|x) towards the prior: the "
        f"encoder spreads and sharpens its posteriors at will. KL(q‖p) grew to "
        f"{cite(b0 + 'test/kl')} nats per image ({_ratio(kl0, klt):.0f}× the tuned VAE's "
        f"{cite(t + 'test/kl')}), reconstructions are {recon0} (SSE {cite(b0 + 'test/sse')}; AE "
        f"{cite(ae + 'test/sse')}), and prior samples have Fréchet distance "
        f"{cite(b0 + 'samples/fd')} (AE {cite(ae + 'samples/fd')}, tuned VAE "
        f"{cite(t + 'samples/fd')}), {_pr(doc, 'vae_beta0')} and classifier confidence "
        f"{cite(b0 + 'samples/confidence')}, {story}. The model is a noisy auto-encoder, not a "
        "generative model."
    )


def q_beta10(doc: Doc, s: dict[str, Any]) -> None:
    v, cite = doc.v, doc.cite
    ae, b10, t = _ev("ae"), _ev("vae_beta10"), _ev(s["tuned"])
    kl10, sse10 = v(b10 + "test/kl"), v(b10 + "test/sse")
    mean_sse = s["baselines"]["mean_image_sse"]
    if v(b10 + "test/active_units") == 0 or (
        kl10 < COLLAPSE_KL_NATS and sse10 > COLLAPSE_SSE_SHARE * mean_sse
    ):
        what = (
            "the posterior has collapsed: q(z|x) ≈ N(0, I) for every image, z carries almost "
            "no information, and the decoder outputs nearly the same average digit whatever "
            "the input"
        )
    elif kl10 < PARTIAL_COLLAPSE_KL_SHARE * v(t + "test/kl"):
        what = (
            "the posterior has partly collapsed: z carries little information, so "
            "reconstructions are blurry prototypes rather than the input digits"
        )
    else:
        what = (
            "contrary to the expected story, the posterior did not collapse at this "
            "schedule: z still carries information"
        )
    doc.h(3, "What does β = 10 do, and why?")
    doc.p(
        f"A KL weight of 10 makes every nat of information in z cost ten times its "
        f"reconstruction value, so the optimum gives up on encoding: KL is "
        f"{cite(b10 + 'test/kl')} nats per image with {cite(b10 + 'test/active_units', 'd')} "
        f"active units, and the reconstruction error is {cite(b10 + 'test/sse')} per image — "
        f"predicting the mean training image scores {cite('baselines::mean_image_sse')}, the AE "
        f"{cite(ae + 'test/sse')}. So {what}. The classifier recognises "
        f"{cite(b10 + 'recon/classifier_accuracy', '.1%')} of its reconstructions (AE: "
        f"{cite(ae + 'recon/classifier_accuracy', '.1%')}); its samples have class entropy "
        f"{cite(b10 + 'samples/class_entropy')} nats (ln 10 = 2.303) and "
        f"{_pr(doc, 'vae_beta10')}: {_pr_reading(s, 'vae_beta10')}."
    )


def q_tuned(doc: Doc, s: dict[str, Any]) -> None:
    v, cite, c, search = doc.v, doc.cite, s["config"], s["search"]
    ae, t, beta = _ev("ae"), _ev(s["tuned"]), search["chosen_beta"]
    fallback = (
        " No β met both thresholds, so this is the fallback choice; treat it with care."
        if search["fallback"]
        else ""
    )
    lo, hi = COURSE_BETA_RANGE
    ref = ("inside" if lo <= beta <= hi else "outside") + (
        f" the range {lo:g}–{hi:g} that course solutions reached once converted to these units"
    )
    faithful = v(t + "recon/classifier_accuracy") >= c["min_recon_accuracy"]
    good_samples = v(t + "samples/class_entropy") >= c["min_class_entropy"] and v(
        t + "samples/fd"
    ) < v(ae + "samples/fd")
    recon_text = (
        "keep the identity of the input"
        if faithful
        else "do not reliably keep the identity of the input"
    )
    sample_text = (
        "clear and diverse, and closer to real digits than the AE's"
        if good_samples
        else "not yet clear and diverse by these measures"
    )
    doc.h(3, "What does a well-tuned VAE look like, and which β was chosen?")
    doc.p(
        f"β = {cite('search::chosen_beta', 'g')} was chosen: {search['reason']}.{fallback}"
        f" This is {ref}. Its reconstructions {recon_text} (the classifier recognises "
        f"{cite(t + 'recon/classifier_accuracy', '.1%')}; SSE {cite(t + 'test/sse')} per image "
        f"against the AE's {cite(ae + 'test/sse')}: the KL term trades sharpness for a smooth, "
        f"prior-matched code), and its prior samples are {sample_text}: Fréchet distance "
        f"{cite(t + 'samples/fd')} (AE {cite(ae + 'samples/fd')}, floor "
        f"{cite(ae + 'floor/fd_train_vs_test')}), {_pr(doc, s['tuned'])} (AE "
        f"{_pr(doc, 'ae')}; so {_pr_reading(s, s['tuned'])}), classifier confidence "
        f"{cite(t + 'samples/confidence')}, class "
        f"entropy {cite(t + 'samples/class_entropy')} nats. It uses "
        f"{cite(t + 'test/active_units', 'd')} of {c['latent_dim']} latent units at KL "
        f"{cite(t + 'test/kl')} nats; its importance-weighted NLL is "
        f"{cite(t + 'test/iw_nll', '.2f')} nats against a negative ELBO of "
        f"{cite(t + 'test/neg_elbo_same_images', '.2f')} on the same images."
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


def q_interpolation(doc: Doc, s: dict[str, Any]) -> None:
    v, cite, tuned = doc.v, doc.cite, s["tuned"]
    ae, t = _ev("ae"), _ev(tuned)
    lerp = "interp/lerp/"
    verdict = _realism_verdict(
        v(ae + lerp + "realism_median"),
        v(t + lerp + "realism_median"),
        v(ae + "interp/pixel/realism_median"),
    )
    dip_ae, dip_t = v(ae + lerp + "min_conf"), v(t + lerp + "min_conf")
    if dip_t > dip_ae + CONFIDENCE_MARGIN:
        conf = "the classifier reads the VAE's paths more confidently"
    elif dip_ae > dip_t + CONFIDENCE_MARGIN:
        conf = (
            "the classifier reads the AE's paths more confidently, which says only that its "
            "decodes are sharp: an overlay of two sharp digits is often named confidently"
        )
    else:
        conf = "the classifier reads both about equally confidently"
    rep = f"representation{SEP}"
    better = (
        "the VAE's"
        if v(rep + tuned + "::probe/linear_acc") > v(rep + "ae::probe/linear_acc")
        else "the AE's"
    )

    def r2(run: str, key: str) -> str:
        return cite(run + lerp + key, ".2f")

    doc.h(3, "How do AE and VAE interpolations differ, and what does it mean downstream?")
    doc.p(
        f"Along linear paths between test images ({_pair_text()}), the "
        f"decoded in-between images have median realism {r2(ae, 'realism_median')} for the AE "
        f"and {r2(t, 'realism_median')} for the tuned VAE (90th percentile "
        f"{r2(ae, 'realism_p90')} vs {r2(t, 'realism_p90')}; least realistic point per path "
        f"{r2(ae, 'realism_worst')} vs {r2(t, 'realism_worst')}; a pixel cross-fade between "
        f"the same images scores {cite(ae + 'interp/pixel/realism_median', '.2f')}, and "
        f"decodes of real codes, the reconstructions, {cite(ae + 'recon/realism_median', '.2f')}"
        f" and {cite(t + 'recon/realism_median', '.2f')}): {verdict}. Realism is the "
        "distance in the reference classifier's features to the nearest real test image, "
        "in units of the typical distance between two real images: about 1 for a real digit, "
        f"higher for images off the data. Confidence (the classifier's top probability, lowest "
        f"point per path {cite(ae + lerp + 'min_conf')} vs {cite(t + lerp + 'min_conf')}) "
        f"measures how decisively a digit is named, not whether it looks real: {conf}. "
        f"Smoothness (pixel path length relative to a straight fade, 1 = even) is "
        f"{cite(ae + lerp + 'path_length_ratio')} for the AE and "
        f"{cite(t + lerp + 'path_length_ratio')} for the VAE. Downstream, {better} embedding "
        f"is the more linearly useful one: linear probe "
        f"{cite(rep + 'ae::probe/linear_acc', '.4f')} (AE) vs "
        f"{cite(rep + tuned + '::probe/linear_acc', '.4f')} (VAE), 5-NN "
        f"{cite(rep + 'ae::probe/knn_acc', '.4f')} vs "
        f"{cite(rep + tuned + '::probe/knn_acc', '.4f')}. A VAE's codes are organised so that "
        "neighbourhoods and straight lines in z mean something (the KL term packs them around "
        "the prior); an AE's are free to be anywhere the decoder can read them, which is "
        "enough for reconstruction but gives no guarantee between codes."
    )


# ---- writing ----------------------------------------------------------------------------------
def precision_recall_figure(root: Path, s: dict[str, Any]) -> Path:
    """figures/beta_precision_recall.png from the β-search trials in study.json."""
    search = s["search"]
    betas = search["trials"]
    trial = [s["runs"][search["trial_runs"][f"{b:g}"]]["eval"] for b in betas]
    floor = trial[0]  # the trials' own floor: precision/recall depend on the set size
    return figures.xy_lines(
        root / "figures" / "beta_precision_recall.png",
        betas,
        {
            "precision (samples realistic)": [e["samples/precision"] for e in trial],
            "recall (real images covered)": [e["samples/recall"] for e in trial],
        },
        "Precision and recall of prior samples vs β",
        "β",
        "share (k-NN manifold, classifier features)",
        hlines=[
            (floor["floor/precision"], "floor precision: real train vs test"),
            (floor["floor/recall"], "floor recall"),
        ],
        mark=search["chosen_beta"],
    )


def write_report(root: Path, study: dict[str, Any]) -> tuple[Path, Path]:
    """Draw the report's own figures (summary panel, precision/recall vs β), then write
    report.md and report.html."""
    write_summary_panel(root, study)
    precision_recall_figure(root, study)
    doc = build(root, study)
    title = f"vaelab study ({study['config']['preset']})"
    md = atomic_write_text(root / "report.md", doc.markdown())
    page = atomic_write_text(root / "report.html", doc.html(title))
    return md, page
