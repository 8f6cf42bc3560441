"""The study's own figures (STUDY_DIR/figures/*.png) from study.json and the runs' stored arrays
(vaelab.evaluate.arrays): the β search's trade-offs, AE vs tuned VAE paths, the summary panel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib import ticker

from vaelab.errors import RunError
from vaelab.evaluate import keys
from vaelab.evaluate.arrays import ARRAYS_FILE, EvalArrays
from vaelab.evaluate.keys import interp_key
from vaelab.report import figures
from vaelab.report.citations import INTERP, ae_and_tuned, run_label
from vaelab.report.render import data_name
from vaelab.report.run_figures import pair_paths
from vaelab.study.schema import StudyResult

SUMMARY_SAMPLES = 32  # 4 rows of 8 per model
FROM_ARRAYS = [
    "summary.png",
    *(f"interp_compare_{a}to{b}.png" for a, b in INTERP.pairs),
    "interp_confidence_compare.png",
]
"""The study figures drawn from the runs' stored arrays."""


@figures.closed_on_error
def write_study_figures(root: Path, s: StudyResult) -> None:
    """Every figure under STUDY_DIR/figures except the data strip (the data stage draws it)."""
    fig_dir = root / "figures"
    beta_figures(fig_dir, s)
    arrays = _stored_arrays(root, s)
    if arrays is not None:
        if s.interpolation:  # none without labels (the study skipped its stage)
            interpolation_figures(fig_dir, s, arrays)
        summary_panel(fig_dir, s, arrays)


def _stored_arrays(root: Path, s: StudyResult) -> dict[str, EvalArrays] | None:
    """The stored arrays of the AE, the tuned VAE and the β = 10 VAE, by run name. A study
    folder evaluated before evaluations stored them keeps the figures it has (None), or fails
    naming the fix."""
    dirs = {n: root / s.runs[n].dir for n in ("ae", s.tuned, "vae_beta10")}
    if all((d / ARRAYS_FILE).is_file() for d in dirs.values()):
        return {n: EvalArrays.load(d) for n, d in dirs.items()}
    missing = [f for f in FROM_ARRAYS if not (root / "figures" / f).is_file()]
    if missing:
        raise RunError(
            f"{root} lacks figures/{missing[0]} and its runs' evaluations stored no {ARRAYS_FILE} "
            "(an older vaelab); delete runs/*/eval_full.json and re-run the same `vaelab "
            "study` command to re-evaluate them"
        )
    return None


def beta_figures(fig_dir: Path, s: StudyResult) -> None:
    """The β-search trials' metrics against β (rate–distortion, FD, precision/recall, entropy,
    active units, probes when the trials had them), the chosen β marked."""
    betas, chosen = s.search.trials, s.search.chosen_beta
    trials = [s.runs[s.search.trial_run(b)].eval for b in betas]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))  # the summary panel shows it too
    _rate_distortion(ax, s)
    figures.save(fig, fig_dir / "rate_distortion.png")
    for name, title, ylabel, series, hlines in _beta_plots(s, trials[0]):
        if any(k not in trials[0] for k in series.values()):
            continue  # no probes in the selection evaluation, no class readings without labels
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        for label, k in series.items():
            ax.plot(betas, [e[k] for e in trials], "o-", ms=4, label=label)
        for (value, label), style in zip(hlines, ("--", ":", "-."), strict=False):
            ax.axhline(value, color="gray", lw=0.8, ls=style, label=label)
        ax.axvline(chosen, color="red", lw=0.8, ls=":", label=f"chosen {chosen:g}")
        ax.set(xlabel="β", ylabel=ylabel, title=title)
        _log_axis(ax, betas)
        if name == "beta_fd.png":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        figures.save(fig, fig_dir / name)


def _log_axis(ax: plt.Axes, x: Sequence[float]) -> None:
    """Log x axis; symlog (linear near 0) only when some value is not positive."""
    positive = [v for v in x if v > 0]
    if len(positive) == len(x):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)


def _beta_plots(
    s: StudyResult, first: dict[str, float]
) -> list[tuple[str, str, str, dict[str, str], list[tuple[float, str]]]]:
    """(file, title, y label, {line label: eval key}, reference lines) of each plot against β.
    The precision/recall floors are the trials' own: both depend on the set size."""
    ae = s.runs["ae"].eval
    return [
        (
            "beta_fd.png",
            "Fréchet distance to the test set vs β",
            "Fréchet distance (classifier features)",
            {"prior samples": keys.SAMPLES_FD, "reconstructions": keys.RECON_FD},
            [(ae[keys.FLOOR_FD], "floor: real train vs test")],
        ),
        (
            "beta_precision_recall.png",
            "Precision and recall of prior samples vs β",
            "share (k-NN manifold, classifier features)",
            {
                "precision (samples realistic)": keys.SAMPLES_PRECISION,
                "recall (real images covered)": keys.SAMPLES_RECALL,
            },
            [
                (first[keys.FLOOR_PRECISION], "floor precision: real train vs test"),
                (first[keys.FLOOR_RECALL], "floor recall"),
            ],
        ),
        (
            "beta_entropy.png",
            "Diversity and clarity of prior samples vs β",
            "nats / probability",
            {
                "class entropy of samples": keys.SAMPLES_CLASS_ENTROPY,
                "mean confidence on samples": keys.SAMPLES_CONFIDENCE,
            },
            [(math.log(max(s.classes, 1)), f"ln {s.classes} (uniform over classes)")],
        ),
        (
            "beta_active_units.png",
            "Active latent units vs β (Burda et al. criterion)",
            f"active units (of {s.config.train.latent_dim})",
            {"active units": keys.TEST_ACTIVE_UNITS},
            [],
        ),
        (
            "beta_probe.png",
            "Downstream accuracy of μ vs β",
            "test accuracy",
            {"linear probe": keys.PROBE_LINEAR, "5-NN": keys.PROBE_KNN},
            [(ae[keys.PROBE_LINEAR], "AE linear probe")] if keys.PROBE_LINEAR in ae else [],
        ),
    ]


def interpolation_figures(fig_dir: Path, s: StudyResult, arrays: dict[str, EvalArrays]) -> None:
    """The AE's and the tuned VAE's paths side by side (lerp and slerp), and the classifier's
    confidence along them."""
    models = {"AE": arrays["ae"], run_label(s.runs[s.tuned]): arrays[s.tuned]}
    steps = arrays["ae"].steps
    for a, b in INTERP.pairs:
        figures.image_rows(
            fig_dir / f"interp_compare_{a}to{b}.png",
            [
                (f"{name} {mode} #{j + 1}", path)
                for mode in ("lerp", "slerp")
                for name, stored in models.items()
                for j, path in enumerate(pair_paths(stored, (a, b), mode))
            ],
            f"{a}→{b}: AE vs tuned VAE, lerp and slerp (start, {steps} decoded codes, end)",
        )
    figures.path_curves(
        fig_dir / "interp_confidence_compare.png",
        {
            f"{name} {mode}": stored.confidence[mode]
            for mode in ("lerp", "slerp")
            for name, stored in models.items()
        },
        "Classifier confidence along paths: AE vs tuned VAE",
        "classifier confidence",
        ylim=(0, 1.02),
    )


def summary_panel(fig_dir: Path, s: StudyResult, arrays: dict[str, EvalArrays]) -> Path:
    """figures/summary.png, the report's first figure: prior samples of the AE, the tuned VAE and
    the β = 10 VAE, 8 per row (top); the first lerp path per label pair of the AE and the tuned
    VAE (when the study has interpolations) and the rate–distortion curve (bottom)."""
    runs = s.runs
    shown = [*ae_and_tuned(s), ("vae_beta10", run_label(runs["vae_beta10"]))]
    fig = plt.figure(figsize=(13, 5.4))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 1.0], hspace=0.3, wspace=0.24)
    for i, (name, label) in enumerate(shown):
        ax = fig.add_subplot(grid[0, i])
        figures.show_grid(ax, arrays[name].samples[:SUMMARY_SAMPLES], 8)
        e = runs[name].eval
        ax.set_title(
            f"{label}: prior samples\nFD {e[keys.SAMPLES_FD]:.3g} · precision "
            f"{e[keys.SAMPLES_PRECISION]:.2f} · recall {e[keys.SAMPLES_RECALL]:.2f}",
            fontsize=10,
        )
    for i, (name, label) in enumerate(shown[:2] if s.interpolation else []):
        realism = runs[name].eval[interp_key("lerp", "realism_median")]
        sub = grid[1, i].subgridspec(len(INTERP.pairs), 1, hspace=0.06)
        for r, (a, b) in enumerate(INTERP.pairs):
            ax = fig.add_subplot(sub[r])
            path = pair_paths(arrays[name], (a, b), "lerp")[0]
            figures.show_grid(ax, path, len(path), f"{a}→{b}")
            if r == 0:
                ax.set_title(f"{label}: lerp paths, realism {realism:.2f}", fontsize=10)
    _rate_distortion(fig.add_subplot(grid[1, 2]), s)
    fig.suptitle(
        f"AE vs tuned VAE vs β = 10 on {data_name(s)} ({s.config.preset} preset; realism: "
        "1 ≈ a real image, higher = less real)",
        fontsize=12,
    )
    return figures.save(fig, fig_dir / "summary.png")


def _spans_decade(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(values) > 10 * min(positive)


def _rate_distortion(ax: plt.Axes, s: StudyResult) -> None:
    """The β search's rate (KL) against distortion (SSE) with the chosen β, the chosen β's final
    run (when it is not the trial itself: trained longer) and the AE's distortion."""
    betas, chosen = s.search.trials, s.search.chosen_beta
    trial = {b: s.runs[s.search.trial_run(b)].eval for b in betas}
    rate = [trial[b][keys.TEST_KL] for b in betas]
    distortion = [trial[b][keys.TEST_SSE] for b in betas]
    ax.plot(rate, distortion, "o-", ms=4, color="tab:blue", label="VAE, one point per β")
    for xi, yi, b in zip(rate, distortion, betas, strict=True):
        ax.annotate(f"β={b:g}", (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    cx, cy = trial[chosen][keys.TEST_KL], trial[chosen][keys.TEST_SSE]
    ax.plot([cx], [cy], "*", ms=14, color="red", label=f"chosen β = {chosen:g}")
    if s.search.trial_run(chosen) != s.tuned:
        tuned = s.runs[s.tuned].eval
        rate.append(tuned[keys.TEST_KL])
        distortion.append(tuned[keys.TEST_SSE])
        ax.plot(rate[-1:], distortion[-1:], "D", ms=7, color="darkred", label="tuned run")
    ae_sse = s.runs["ae"].eval[keys.TEST_SSE]
    ax.axhline(ae_sse, color="gray", lw=0.8, ls="--", label="AE (no rate term)")
    # Log axes only where the values span a decade: on a narrower range matplotlib labels
    # every minor tick and the labels overlap.
    if _spans_decade(rate):
        _log_axis(ax, rate)
    if _spans_decade(distortion):
        ax.set_yscale("log")
        # plain labels at 1-2-5 steps: the default minor labels ("6×10¹") are wider than the
        # room left of the axis and ran into the y label
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set(xlabel="rate: KL per image (nats)", ylabel="distortion: SSE / image")
    ax.set_title("Rate–distortion across β", fontsize=10)
    ax.legend(fontsize=7)
