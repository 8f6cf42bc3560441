"""The study's questions, answered from study.json: one function per question, each judging the
numbers against a named threshold below, never against a constant hidden in a sentence.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from vaelab.evaluate import keys
from vaelab.evaluate.keys import interp_key
from vaelab.report.citations import INTERP, probe
from vaelab.report.render import Doc
from vaelab.study.schema import StudyResult
from vaelab.tune.halving import class_entropy_threshold

# ---- thresholds behind the wording of the answers -------------------------------------------
PRIOR_NORM_BAND = (0.8, 1.25)  # AE code norm / prior norm (√nz) inside: "resembles the prior's"
PRIOR_STD_BAND = (0.5, 2.0)  # ... provided every dimension's std of the AE codes is inside too
OFF_MANIFOLD_FACTOR = 1.2  # AE prior-to-code distance ratio over this × the VAE's: "fall off"
AE_LIKE_SSE_FACTOR = 1.5  # β = 0 reconstructions with SSE under this × the AE's are "AE-like"
COLLAPSE_KL_NATS = 1.0  # β = 10 with KL under this (nats/image) ...
COLLAPSE_SSE_SHARE = 0.8  # ... and SSE over this share of the mean-image SSE: "collapsed"
PARTIAL_COLLAPSE_KL_SHARE = 0.2  # β = 10 KL under this share of the tuned VAE's: "partly"
COURSE_BETA_RANGE = (0.6, 1.8)  # tuned β of course solutions in per-image SSE + β·KL (see FAQ)
REALISM_MARGIN = 0.03  # realism medians closer than this (ratio units) count as equal
CONFIDENCE_MARGIN = 0.02  # lowest-confidence averages closer than this count as equal
PR_LOW_SHARE = 0.5  # sample precision (recall) under this share of its floor counts as low

# §6 and its answer on unlabelled images, whose evaluations skip paths and probes.
NO_INTERPOLATION = (
    "Not measured: these images have no labels, and the evaluation's paths join images of two "
    "chosen classes and are scored by the classifier's confidence in them, so this report "
    "cannot give the AE's and the tuned VAE's path realism, confidence or smoothness, nor the "
    "probes' accuracies downstream (eval.json: `skipped/interpolation`, `skipped/probes`)."
)


_lerp = functools.partial(interp_key, "lerp")  # the eval.json key of a lerp path measure


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


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


def q_ae_samples(doc: Doc, s: StudyResult) -> str:
    ev, tuned, ae = doc.ev, s.tuned, s.code_stats["ae"]

    def code(run: str, field: str, spec: str = ".3g") -> str:
        return doc.cite(lambda s: getattr(s.code_stats[run], field), spec)

    ae_fd, t_fd = s.runs["ae"].eval[keys.SAMPLES_FD], s.runs[tuned].eval[keys.SAMPLES_FD]
    verdict = (
        f"about {_ratio(ae_fd, t_fd):.1f}× the tuned VAE's {ev(tuned, keys.SAMPLES_FD)}"
        if ae_fd > t_fd
        else f"which, contrary to the expected story, is no worse than the tuned VAE's "
        f"{ev(tuned, keys.SAMPLES_FD)}"
    )
    norm_ratio = ae.norm_mean / s.baselines.prior_norm
    scale = (
        "Their scale even resembles the prior's, so the mismatch is one of shape, not size: "
        if PRIOR_NORM_BAND[0] < norm_ratio < PRIOR_NORM_BAND[1]
        and ae.dim_std_min > PRIOR_STD_BAND[0]
        and ae.dim_std_max < PRIOR_STD_BAND[1]
        else "Their scale already differs from the prior's, and "
    )
    where = (
        "prior samples fall off the set of codes the decoder was trained on"
        if ae.prior_nn_ratio > OFF_MANIFOLD_FACTOR * s.code_stats[tuned].prior_nn_ratio
        else "yet, contrary to the expected story, prior samples sit no farther from the AE's "
        "codes than from the VAE's"
    )
    classes = (
        f"; the classifier's mean confidence on them is {ev('ae', keys.SAMPLES_CONFIDENCE)} "
        f"(real images: {ev('ae', keys.REAL_CONFIDENCE)}) and their class entropy "
        f"{ev('ae', keys.SAMPLES_CLASS_ENTROPY)} nats"
        if s.labelled
        else ""
    )
    sharp = (
        "Yet its reconstructions are the sharpest of all runs"
        if s.runs["ae"].eval[keys.TEST_SSE] <= min(r.eval[keys.TEST_SSE] for r in s.runs.values())
        else "Its reconstructions are sharp"
    )
    return (
        f"The AE is trained only to reconstruct, so nothing makes N(0, I) a model of its codes. "
        f"Its test codes have mean norm {code('ae', 'norm_mean')} (samples of N(0, I) in "
        f"{s.config.train.latent_dim} dimensions: ≈ {doc.cite(lambda s: s.baselines.prior_norm)}"
        f") and per-dimension standard deviations from {code('ae', 'dim_std_min')} to "
        f"{code('ae', 'dim_std_max')}. {scale}the nearest test code to a prior sample is "
        f"{code('ae', 'prior_nn_ratio', '.2f')}× as far as the nearest test code to another test "
        f"code (tuned VAE: {code(tuned, 'prior_nn_ratio', '.2f')}×; codes are those the decoder "
        f"trained on: μ for the AE, z ~ q(z|x) for the VAE), so {where}. Measured on the "
        f"samples: their Fréchet distance to the test set is {ev('ae', keys.SAMPLES_FD)}, "
        f"{verdict} (floor, real train vs test: {ev('ae', keys.FLOOR_FD)}); {_pr(doc, 'ae')} "
        f"(tuned VAE: {_pr(doc, tuned)}; real train vs test: "
        f"{ev('ae', keys.FLOOR_PRECISION, '.2f')}, {ev('ae', keys.FLOOR_RECALL, '.2f')})"
        f"{classes}. {sharp} (SSE {ev('ae', keys.TEST_SSE)} per image): the decoder is good, "
        "the prior is wrong for it."
    )


def q_beta0(doc: Doc, s: StudyResult) -> str:
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
    confidence = (
        f" and classifier confidence {ev('vae_beta0', keys.SAMPLES_CONFIDENCE)}"
        if s.labelled
        else ""
    )
    return (
        f"With β = 0 the KL term is absent, so nothing pulls q(z|x) towards the prior: the "
        f"encoder spreads and sharpens its posteriors at will. KL(q‖p) grew to "
        f"{ev('vae_beta0', keys.TEST_KL)} nats per image "
        f"({_ratio(b0[keys.TEST_KL], t[keys.TEST_KL]):.0f}× the tuned VAE's "
        f"{ev(tuned, keys.TEST_KL)}), reconstructions are {recon0} (SSE "
        f"{ev('vae_beta0', keys.TEST_SSE)}; AE {ev('ae', keys.TEST_SSE)}), and prior samples "
        f"have Fréchet distance {ev('vae_beta0', keys.SAMPLES_FD)} (AE "
        f"{ev('ae', keys.SAMPLES_FD)}, tuned VAE {ev(tuned, keys.SAMPLES_FD)}), "
        f"{_pr(doc, 'vae_beta0')}{confidence}, {story}. The model is a noisy "
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


def q_beta10(doc: Doc, s: StudyResult) -> str:
    ev, b10 = doc.ev, "vae_beta10"
    # without labels, only the samples' precision and recall
    samples = f"{_pr(doc, b10)}: {_pr_reading(s, b10)}."
    if s.labelled:
        samples = (
            f"The classifier recognises {ev(b10, keys.RECON_ACCURACY, '.1%')} of its "
            f"reconstructions (AE: {ev('ae', keys.RECON_ACCURACY, '.1%')}); its samples have "
            f"class entropy {ev(b10, keys.SAMPLES_CLASS_ENTROPY)} nats (ln {s.classes} = "
            f"{math.log(s.classes):.3f}) and {samples}"
        )
    else:
        samples = f"Its samples have {samples}"
    return (
        f"A KL weight of 10 makes every nat of information in z cost ten times its "
        f"reconstruction value, so the optimum gives up on encoding: KL is "
        f"{ev(b10, keys.TEST_KL)} nats per image with {ev(b10, keys.TEST_ACTIVE_UNITS, 'd')} "
        f"active units, and the reconstruction error is {ev(b10, keys.TEST_SSE)} per image — "
        f"predicting the mean training image scores "
        f"{doc.cite(lambda s: s.baselines.mean_image_sse)}, the AE "
        f"{ev('ae', keys.TEST_SSE)}. So {_beta10_text(s)}. {samples}"
    )


def q_tuned(doc: Doc, s: StudyResult) -> str:
    ev, t, search, c = doc.ev, s.tuned, s.search, s.config
    ae, te = s.runs["ae"].eval, s.runs[t].eval
    fallback = (
        " No β met both thresholds, so this is the fallback choice; treat it with care."
        if search.fallback
        else ""
    )
    lo, hi = COURSE_BETA_RANGE
    ref = "inside" if lo <= search.chosen_beta <= hi else "outside"
    sse = f"SSE {ev(t, keys.TEST_SSE)} per image against the AE's {ev('ae', keys.TEST_SSE)}"
    trade = "the KL term trades sharpness for a smooth, prior-matched code"
    if not s.labelled:  # no identity to keep, no classes to cover: Fréchet distance alone
        closer = "closer" if te[keys.SAMPLES_FD] < ae[keys.SAMPLES_FD] else "no closer"
        recon, classes = f"Its reconstructions have {sse} ({trade})", ""
        sample_text = f"{closer} to real images than the AE's by Fréchet distance"
    else:  # whether reconstructions are recognised; the classifier's reading of samples
        keeps = (
            "keep" if te[keys.RECON_ACCURACY] >= c.min_recon_accuracy else "do not reliably keep"
        )
        recon = (
            f"Its reconstructions {keeps} the identity of the input (the classifier recognises "
            f"{ev(t, keys.RECON_ACCURACY, '.1%')}; {sse}: {trade})"
        )
        classes = (
            f", classifier confidence {ev(t, keys.SAMPLES_CONFIDENCE)}, class entropy "
            f"{ev(t, keys.SAMPLES_CLASS_ENTROPY)} nats"
        )
        entropy = class_entropy_threshold(c.min_class_entropy, s.classes)
        good = (
            te[keys.SAMPLES_CLASS_ENTROPY] >= entropy and te[keys.SAMPLES_FD] < ae[keys.SAMPLES_FD]
        )
        sample_text = (
            "clear and diverse, and closer to real digits than the AE's"
            if good
            else "not yet clear and diverse by these measures"
        )
    # " ± the standard error": absent from an eval.json written before vaelab recorded it
    se = f" ± {ev(t, keys.TEST_IW_NLL_SE, '.2f')}" if keys.TEST_IW_NLL_SE in s.runs[t].eval else ""
    return (
        f"β = {doc.cite(lambda s: s.search.chosen_beta, 'g')} was chosen: {search.reason}."
        f"{fallback} This is {ref} the range {lo:g}–{hi:g} that course solutions reached once "
        f"converted to these units. {recon}, and its prior samples are {sample_text}: Fréchet "
        f"distance {ev(t, keys.SAMPLES_FD)} (AE {ev('ae', keys.SAMPLES_FD)}, floor "
        f"{ev('ae', keys.FLOOR_FD)}), {_pr(doc, t)} (AE "
        f"{_pr(doc, 'ae')}; so {_pr_reading(s, t)}){classes}. It uses "
        f"{ev(t, keys.TEST_ACTIVE_UNITS, 'd')} of {s.config.train.latent_dim} latent units at KL "
        f"{ev(t, keys.TEST_KL)} nats; its importance-weighted NLL is "
        f"{ev(t, keys.TEST_IW_NLL, '.2f')}{se} nats against a negative ELBO of "
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


def q_interpolation(doc: Doc, s: StudyResult) -> str:
    ev, tuned = doc.ev, s.tuned
    if not s.interpolation:
        return NO_INTERPOLATION
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

    def both(name: str, spec: str = ".2f", sep: str = " vs ") -> str:
        """The AE's and the tuned VAE's value of a lerp measure."""
        return f"{ev('ae', _lerp(name), spec)}{sep}{ev(tuned, _lerp(name), spec)}"

    def probes(key: str, sep: str) -> str:
        return f"{probe(doc, 'ae', key)}{sep}{probe(doc, tuned, key)}"

    pairs = ", ".join(f"{a}→{b}" for a, b in INTERP.pairs)
    return (
        f"Along linear paths between test images ({pairs}; {INTERP.n_pairs} image pairs each), "
        f"the decoded in-between images have median realism "
        f"{both('realism_median', sep=' for the AE and ')} for the tuned VAE (90th percentile "
        f"{both('realism_p90')}; least realistic point per path {both('realism_worst')}; a pixel "
        f"cross-fade between the same images scores "
        f"{ev('ae', interp_key('pixel', 'realism_median'), '.2f')}, and decodes of real codes, "
        f"the reconstructions, {ev('ae', keys.RECON_REALISM_MEDIAN, '.2f')} and "
        f"{ev(tuned, keys.RECON_REALISM_MEDIAN, '.2f')}): {verdict}. Realism is the "
        "distance in the reference classifier's features to the nearest real test image, "
        "in units of the typical distance between two real images: about 1 for a real digit, "
        f"higher for images off the data. Confidence (the classifier's top probability, lowest "
        f"point per path {both('min_conf', '.3g')}) measures how decisively a digit is named, "
        f"not whether it looks real: {conf}. Smoothness (pixel path length relative to a "
        f"straight fade, 1 = even) is {both('path_length_ratio', '.3g', ' for the AE and ')} for "
        f"the VAE. Downstream, {better} embedding is the more linearly useful one: linear probe "
        f"{probes(keys.PROBE_LINEAR, ' (AE) vs ')} (VAE), 5-NN {probes(keys.PROBE_KNN, ' vs ')}. "
        "A VAE's codes are organised so that neighbourhoods and straight lines in z mean "
        "something (the KL term packs them around the prior); an AE's are free to be anywhere "
        "the decoder can read them, which is enough for reconstruction but gives no guarantee "
        "between codes."
    )


QUESTIONS: tuple[tuple[str, Callable[[Doc, StudyResult], str]], ...] = (
    ("Why do AE prior samples look the way they do?", q_ae_samples),
    ("What does β = 0 do, and why?", q_beta0),
    ("What does β = 10 do, and why?", q_beta10),
    ("What does a well-tuned VAE look like, and which β was chosen?", q_tuned),
    ("How do AE and VAE interpolations differ, and what does it mean downstream?", q_interpolation),
)


def answers_section(doc: Doc, s: StudyResult) -> None:
    """The heading, then every question's answer."""
    doc.h(2, "The study's questions, answered from this run", "answers")
    for question, answer in QUESTIONS:
        doc.h(3, question)
        doc.p(answer(doc, s))
