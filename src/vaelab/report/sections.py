"""The study report (report.md, report.html) from study.json: one function per section, `build`
puts them in order with the answers to the study's questions (vaelab.report.answers). Every number
cites study.json (vaelab.report.render); figures are drawn from stored results
(vaelab.report.study_figures), so re-rendering a study folder needs no model.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.evaluate import keys
from vaelab.evaluate.keys import interp_key
from vaelab.fsutil import atomic_write_text
from vaelab.report import answers, faq
from vaelab.report.citations import INTERP, ae_and_tuned, probe
from vaelab.report.render import Doc, data_name
from vaelab.report.study_figures import write_study_figures
from vaelab.study.schema import StudyResult
from vaelab.tune.halving import (
    INELIGIBLE_PENALTY,
    class_entropy_threshold,
    criterion_text,
    selection_loss,
)

SPLITS = ("train", "val", "test", "train+val")
"""vaelab.data.store.SPLITS, whose package imports torch: study.json sorts its keys, and a
re-rendered report must list splits as the first one did."""


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
TRAIN_COLUMNS = (("train_time_s", ".0f"), ("val/loss", ".4g"))
VAE_ONLY = (keys.TEST_KL, keys.TEST_ELBO, keys.TEST_IW_NLL, keys.TEST_ACTIVE_UNITS)


def metric(doc: Doc, run: str, key: str, spec: str = "") -> str:
    """A run's metric in `spec` (default: its METRICS format), or "–" when not part of the run's
    evaluation."""
    assert doc.study is not None, "only a study's Doc cites study.json"
    return doc.ev(run, key, spec or METRICS[key][1]) if key in doc.study.runs[run].eval else "–"


def summary(doc: Doc, s: StudyResult) -> None:
    """Title, the summary panel (the first figure of the page), then one line of context."""
    c = s.config
    doc.h(1, f"vaelab study: AE and β-VAE on {data_name(s, quote='`')} ({c.preset} preset)")
    paths = (
        "linear interpolations between test images (ends are the real images) with their "
        "realism (1 ≈ a real image), and "
        if s.interpolation
        else ""
    )
    doc.img(
        "figures/summary.png",
        "Top: prior samples of the AE, the tuned VAE and the β = 10 VAE with their Fréchet "
        "distance, precision (are samples realistic?) and recall (are all kinds of digits "
        f"produced?). Bottom: {paths}the rate–distortion curve of the β search with the chosen β.",
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
    c, env, variant = s.config, s.env, s.classifier.variant
    classifier = (
        f"{variant}, label-free (predicts the pixels; no labels to score it)"
        if s.classifier.test_accuracy is None
        else f"{variant}, test accuracy {doc.cite(lambda s: s.classifier.test_accuracy, '.4f')}"
    )
    doc.h(2, "How to reproduce", "reproduce")
    cmd = f"vaelab study --preset {c.preset} --dataset {c.train.dataset}"
    if c.train.dataset == "mnist":  # what `make study` runs
        doc.code(f"make study            # or: {cmd} --out {c.out}")
    else:  # the data's own flags: without them the command would study other images
        t = c.train
        flags = {"data-dir": t.data_dir, "image-size": t.image_size, "color": t.color}
        doc.code(cmd + "".join(f" --{k} {v}" for k, v in flags.items() if v) + f" --out {c.out}")
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
            ["seed", f"{c.train.seed} (every run; evaluation seed {c.train.seed})"],
            ["reference classifier", classifier],
        ],
    )
    doc.table(
        ["stage", "wall time this session (s)"],
        [[k, doc.cite(lambda s: s.stage_time_s[k], ".1f")] for k in s.stage_order],  # noqa: B023
    )
    doc.p(
        f"Compute in the runs (training + evaluation, summed over sessions): "
        f"{doc.cite(lambda s: s.compute_time_s, '.0f')} s. Re-running the command reuses "
        "finished runs and resumes unfinished ones."
    )


def data_section(doc: Doc, s: StudyResult) -> None:
    c, splits = s.config, s.data.splits
    doc.h(2, "1. Data", "data")
    shown = {k: splits[k] for k in dict.fromkeys([*SPLITS, *splits]) if k in splits}
    doc.table(
        ["split", "images", "label counts", "pixel mean"],
        [
            [
                k,
                str(v.count),
                " ".join(map(str, v.label_counts)),
                "–" if v.pixel_mean is None else f"{v.pixel_mean:.4f}",
            ]
            for k, v in shown.items()
        ],
    )
    doc.p(
        f"Source: {s.data.source}. Training runs use "
        f"{c.train.limit_train or splits['train'].count} train images; evaluation uses the "
        f"first {c.eval.limit or splits['test'].count} test images."
    )
    doc.img("figures/data_strip.png", "The first 16 training images.")


def run_section(doc: Doc, s: StudyResult, name: str, title: str, full: bool = False) -> None:
    r = s.runs[name]
    doc.h(2, title, name)
    shown = [k for k in METRICS if (r.model == "vae" or k not in VAE_ONLY) and k in r.eval]
    doc.table(["metric", "value"], [[METRICS[k][0], metric(doc, name, k)] for k in shown])
    d = r.dir
    doc.img(f"{d}/figures/curves.png", "Training curves (per logged iteration).")
    doc.img(f"{d}/figures/reconstructions.png", "Test inputs (top) and reconstructions.")
    doc.img(f"{d}/figures/samples.png", "Decodes of z ~ N(0, I).")
    if full:
        for f, cap in (
            ("latent_map.png", "Test codes μ, first two principal components."),
            ("traversals.png", "Traversals of the most informative dimensions."),
            ("kl_per_dim.png", "KL per latent dimension."),
            ("interp_confidence.png", "Classifier confidence along its own paths."),
        ):
            if f.startswith("interp_") and not s.interpolation:
                continue  # no paths without labels
            doc.img(f"{d}/figures/{f}", cap)


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


def search_section(doc: Doc, s: StudyResult) -> None:
    """Section 4: the criterion, the search rule, every trial, (halving) every later rung, how
    trials were evaluated, and the trade-off figures."""
    c, search = s.config, s.search
    doc.h(2, "4. β search", "search")
    criterion = criterion_text(c.min_recon_accuracy, c.min_class_entropy, s.labelled, s.classes)
    doc.p(
        f"Selection criterion: {criterion}. Search: {'; '.join(search.log)}. "
        f"Result: {search.reason}."
    )
    if not s.labelled:
        doc.p(
            "Without labels this report cannot give the reference classifier's accuracy, the "
            "classifier's readings of reconstructions and samples (accuracy, class entropy, "
            "confidence), the probes' accuracies or interpolations between chosen classes; "
            "eval.json marks each as `skipped/…`. Fréchet distance, precision/recall and "
            "realism use the label-free features."
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
        optional = rel.endswith(("beta_probe.png", "beta_entropy.png"))
        if optional and not (doc.root / rel).is_file():
            continue  # no probes in the selection evaluation, no class readings without labels
        doc.img(rel, cap)


def _trial_rows(doc: Doc, s: StudyResult) -> list[list[str]]:
    """The first rung's trials. Their marks describe that rung's numbers: a β is eligible here
    when its own first-rung evaluation meets both thresholds (`search.eligible` is the rung that
    decided, which in a halving search can hold fewer β than this table)."""
    search, c, rows = s.search, s.config, []
    min_entropy = class_entropy_threshold(c.min_class_entropy, s.classes)
    for b in search.trials:
        name = search.trial_run(b)
        loss = selection_loss(s.runs[name].eval, c.min_recon_accuracy, min_entropy)
        eligible = loss < INELIGIBLE_PENALTY
        mark = " (chosen)" if b == search.chosen_beta else " (eligible)" if eligible else ""
        rows.append([f"{b:g}{mark}", *(metric(doc, name, k) for k in SEARCH_METRICS)])
    return rows


def _rung_tables(doc: Doc, s: StudyResult) -> None:
    """Successive halving: one table per rung after the first (the first is the trial table)."""
    cols = (keys.SAMPLES_FD, keys.SAMPLES_CLASS_ENTROPY, keys.RECON_ACCURACY)
    for rung in s.search.rungs[1:]:
        doc.table(
            [f"rung {rung.rung} ({rung.epochs} epochs on {rung.limit_train} images): β"]
            + [METRICS[k][0] for k in cols[:2]]
            + ["recon accuracy"],
            [
                [b, *(metric(doc, name, k) for k in cols)]
                for b, name in sorted(rung.runs.items(), key=lambda kv: float(kv[0]))
            ],
        )


def _search_units(doc: Doc, s: StudyResult) -> None:
    c, shape = s.config, s.data.splits["train"].shape
    first = s.search.trial_run(s.search.trials[0])
    # how many values an image's SSE sums, said when they are not MNIST's 1×28×28
    summed = "" if shape == [1, 28, 28] else f" (a sum over its {'×'.join(map(str, shape))} values)"
    full = [n for n in s.run_order if s.runs[n].evaluation == "full"]
    # without labels there is no accuracy, class entropy, probe or class-pair path to list
    recon, samples, extra, features = (
        (
            "reconstruction accuracy and rate/distortion",
            "FD, precision/recall and class entropy",
            "probes, interpolations, ",
            "reference-classifier features",
        )
        if s.labelled
        else ("rate/distortion", "FD and precision/recall", "", "the label-free network's features")
    )
    doc.p(
        "Evaluation sized to the decision: trials got the selection evaluation "
        f"({recon} on {c.selection_limit} test images, {samples} of {c.selection_samples} "
        "prior samples; FD grows and the k-NN measures change as the sample count shrinks, so "
        f"trial values compare with each other only); {', '.join(full)} got the full one "
        f"({c.eval.n_samples} prior samples, IW-NLL with K = {c.eval.iw_samples}, {extra}"
        "all figures). "
        f"Units: SSE per image{summed}; KL, ELBO and IW-NLL in nats per image (IW-NLL: "
        f"importance-weighted with K = {c.eval.iw_samples} on {c.eval.iw_limit or 'all'} test "
        "images, a continuous density on dequantised pixels for this Gaussian decoder with "
        f"σ² = ½); FD = Fréchet distance of {features}; precision and recall "
        f"with k = {doc.ev(first, keys.SAMPLES_PR_K, 'g')} nearest neighbours on "
        f"{doc.ev(first, keys.SAMPLES_PR_N, 'g')} images per set. Floors for the trials (real "
        f"train vs test at the same set size): FD {doc.ev(first, keys.FLOOR_FD)}"
        f", precision {doc.ev(first, keys.FLOOR_PRECISION, '.3f')}, recall "
        f"{doc.ev(first, keys.FLOOR_RECALL, '.3f')}."
    )


INTERP_COLUMNS = {  # a path measure (vaelab.evaluate.keys.interp_key) -> its column, as .3f
    "realism_median": "realism, median",
    "realism_p90": "realism, 90th pct",
    "realism_worst": "realism, worst per path",
    "mean_conf": "mean confidence",
    "min_conf": "lowest confidence",
    "path_length_ratio": "path length / straight",
}


def interpolation_section(doc: Doc, s: StudyResult) -> None:
    doc.h(2, "6. Interpolation: AE vs tuned VAE", "interpolation")
    if not s.interpolation:
        doc.p(answers.NO_INTERPOLATION)
        return
    for a, b in INTERP.pairs:
        doc.img(
            f"figures/interp_compare_{a}to{b}.png",
            f"{a}→{b}: rows alternate AE and tuned VAE, lerp then slerp; the ends are the real "
            "test images.",
        )
    for name, label in ae_and_tuned(s):
        doc.img(
            f"{s.runs[name].dir}/figures/interp_realism.png",
            f"{label}: realism of the in-between images along lerp and slerp paths and along a "
            "pixel cross-fade of the same end images (1 ≈ a held-out real image).",
        )
    doc.img(
        "figures/interp_confidence_compare.png",
        "Classifier confidence along the paths (mean over "
        f"{len(INTERP.pairs) * INTERP.n_pairs} paths, band = min–max).",
    )
    doc.table(["model, path", *INTERP_COLUMNS.values()], _interpolation_rows(doc, s))
    doc.p(faq.INTERPOLATION_MEASURES)


def _interpolation_rows(doc: Doc, s: StudyResult) -> list[list[str]]:
    """The AE's and the tuned VAE's lerp and slerp paths, then the model-free pixel fade."""
    paths = [
        (f"{label}, {mode}", n, mode) for n, label in ae_and_tuned(s) for mode in ("lerp", "slerp")
    ]
    return [
        [row, *(metric(doc, name, interp_key(mode, key), ".3f") for key in INTERP_COLUMNS)]
        for row, name, mode in [*paths, ("pixel cross-fade (no model)", "ae", "pixel")]
    ]


def representation_section(doc: Doc, s: StudyResult) -> None:
    doc.h(2, "7. Representation usefulness", "representation")
    if not s.representation:
        doc.p("Not measured: the probes predict labels from the codes, and these images have none.")
        return
    doc.table(
        ["run", "linear probe", "5-NN"],
        [
            [name, *(probe(doc, name, k) for k in (keys.PROBE_LINEAR, keys.PROBE_KNN))]
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
        beta = f"{r.beta:g}" if r.model == "vae" else "–"
        # the run's training summary (vaelab.train.loop): its time and last validation loss
        train = [doc.cite(lambda s: s.runs[name].train[k], f) for k, f in TRAIN_COLUMNS]  # noqa: B023
        rows.append(
            [name, r.model, beta, str(r.epochs), *train, *(metric(doc, name, k) for k in cols)]
        )
    doc.table(
        ["run", "model", "β", "epochs", "train s", "val loss"] + [METRICS[k][0] for k in cols], rows
    )


def build(root: Path, s: StudyResult) -> Doc:
    """The whole report, section by section (figures must already exist under root)."""
    doc = Doc(s, root)
    summary(doc, s)
    answers.answers_section(doc, s)
    reproduce_section(doc, s)
    data_section(doc, s)
    for name, title in (
        ("ae", "2. Auto-encoder"),
        ("vae_beta0", "3a. VAE, β = 0"),
        ("vae_beta10", "3b. VAE, β = 10"),
    ):
        run_section(doc, s, name, title)
    search_section(doc, s)
    beta = s.search.chosen_beta
    run_section(doc, s, s.tuned, f"5. The tuned VAE (β = {beta:g})", full=True)
    interpolation_section(doc, s)
    representation_section(doc, s)
    all_runs_section(doc, s)
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
