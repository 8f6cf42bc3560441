"""eval.json's schema: each metric group's result is a dataclass whose fields carry their keys,
turned into keys in one place (`to_keys`); the study, its report and sweeps read key names here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vaelab.config import GROUPS

PATH_MODES = ("lerp", "slerp", "pixel")
"""Interpolation paths: linear and spherical in code space; `pixel` is the cross-fade baseline."""
BOOKKEEPING = ("eval/n_images", "eval/seed", "eval/time_s", "eval/figures")


class Key(NamedTuple):
    """A field's eval.json key template ({split}, {mode}, a list's {i} from `first`, its length
    eval_keys' argument `length`); `vae`: VAE runs only; `decoded`: not the pixel cross-fade;
    `labels`: needs labelled data (without, `skipped/<key>` = 1 instead, `{i}` written as `*`)."""

    template: str
    vae: bool = False
    decoded: bool = False
    length: str = ""
    first: int = 0
    labels: bool = False


def key(template: str, **flags: Any) -> Any:
    """A dataclass field whose metadata["key"] is Key(template, **flags)."""
    return field(metadata={"key": Key(template, **flags)})


@dataclass
class Reconstruction:
    """Distortion and rate of the code, and what the classifier makes of reconstructions."""

    sse: float = key("{split}/sse")
    sse_se: float = key("{split}/sse_se")
    mse: float = key("{split}/mse")
    bce: float = key("{split}/bce")
    kl: float | None = key("{split}/kl", vae=True)
    kl_dim: Sequence[float] | None = key("{split}/kl_dim_{i:02d}", vae=True, length="latent_dim")
    active_units: int | None = key("{split}/active_units", vae=True)
    classifier_accuracy: float | None = key("classifier/test_accuracy", labels=True)
    accuracy: float | None = key("recon/classifier_accuracy", labels=True)
    fd: float = key("recon/fd")
    precision: float = key("recon/precision")
    recall: float = key("recon/recall")
    realism_median: float = key("recon/realism_median")
    realism_p90: float = key("recon/realism_p90")


@dataclass
class Likelihood:
    """ELBO and importance-weighted NLL (VAE only)."""

    elbo: float = key("{split}/elbo", vae=True)
    elbo_se: float = key("{split}/elbo_se", vae=True)
    iw_nll: float = key("{split}/iw_nll", vae=True)
    iw_nll_se: float = key("{split}/iw_nll_se", vae=True)
    iw_bits_per_dim: float = key("{split}/iw_bits_per_dim", vae=True)
    iw_k: int = key("{split}/iw_k", vae=True)
    iw_n_images: int = key("{split}/iw_n_images", vae=True)
    iw_time_s: float = key("{split}/iw_time_s", vae=True)
    neg_elbo_same_images: float = key("{split}/neg_elbo_same_images", vae=True)


@dataclass
class SampleQuality:
    """Prior samples against the real images, and real train images against them (the floor)."""

    classifier_accuracy: float | None = key("classifier/test_accuracy", labels=True)
    fd: float = key("samples/fd")
    floor_fd: float = key("floor/fd_train_vs_test")
    precision: float = key("samples/precision")
    recall: float = key("samples/recall")
    floor_precision: float = key("floor/precision")
    floor_recall: float = key("floor/recall")
    pr_n: int = key("samples/pr_n")
    pr_k: int = key("samples/pr_k")
    class_entropy: float | None = key("samples/class_entropy", labels=True)
    confidence: float | None = key("samples/confidence", labels=True)
    real_confidence: float | None = key("real/confidence", labels=True)
    class_frac: Sequence[float] | None = key(
        "samples/class_frac_{i}", length="classes", labels=True
    )


@dataclass
class Probes:
    """Linear and k-NN accuracy of labels read from the codes."""

    linear_acc: float = key("probe/linear_acc")
    knn_acc: float = key("probe/knn_acc")
    n_train: int = key("probe/n_train")


@dataclass
class PathMeasures:
    """Interpolation along one kind of path; smoothness for decoded paths only."""

    mean_conf: float = key("interp/{mode}/mean_conf")
    min_conf: float = key("interp/{mode}/min_conf")
    realism_median: float = key("interp/{mode}/realism_median")
    realism_p90: float = key("interp/{mode}/realism_p90")
    realism_worst: float = key("interp/{mode}/realism_worst")
    realism_step: Sequence[float] = key("interp/{mode}/realism_step_{i}", length="steps", first=1)
    path_length_ratio: float | None = key("interp/{mode}/path_length_ratio", decoded=True)
    max_step_fraction: float | None = key("interp/{mode}/max_step_fraction", decoded=True)


Group = Reconstruction | Likelihood | SampleQuality | Probes | dict[str, PathMeasures]
"""A metric group's result; interpolation's by path mode."""


def to_keys(group: Group | None, split: str) -> dict[str, float]:
    """The eval.json keys and values of a group's result (None: the group wrote nothing)."""
    by_mode = group if isinstance(group, dict) else {"": group} if group is not None else {}
    out: dict[str, float] = {}
    for mode, g in by_mode.items():
        for f in dataclasses.fields(g):
            value, k = getattr(g, f.name), f.metadata["key"]
            if value is None and k.labels:
                out["skipped/" + k.template.format(split=split, mode=mode, i="*")] = 1.0
            many = k.length and value is not None  # a per-dimension or per-class sequence
            for i, v in enumerate(value if many else [value], k.first):
                if v is not None:
                    out[k.template.format(split=split, mode=mode, i=i)] = v
    return out


GROUP_TYPES: dict[str, type] = {
    "reconstruction": Reconstruction,
    "likelihood": Likelihood,
    "samples": SampleQuality,
    "probes": Probes,
    "interpolation": PathMeasures,
}


def eval_keys(
    split: str = "test",
    *,
    is_vae: bool,
    latent_dim: int,
    groups: Sequence[str] = GROUPS,
    steps: int = 5,
    classes: int = 10,
) -> set[str]:
    """The keys of eval.json for a run (VAE or AE with `latent_dim` codes) evaluated on `split`
    with these groups, `steps` interpolation steps and a `classes`-way classifier."""
    counts = {"latent_dim": latent_dim, "steps": steps, "classes": classes}
    keys = set(BOOKKEEPING) | {f"eval/group/{g}" for g in GROUPS}
    for name in groups:
        for mode in PATH_MODES if name == "interpolation" else ("",):
            for f in dataclasses.fields(GROUP_TYPES[name]):
                k = f.metadata["key"]
                if (k.vae and not is_vae) or (k.decoded and mode == "pixel"):
                    continue
                numbers = range(k.first, k.first + counts[k.length]) if k.length else [0]
                keys |= {k.template.format(split=split, mode=mode, i=i) for i in numbers}
    return keys


# Numbered key families, written with their first member in the canonical form.
_NUMBERED = re.compile(r"/(kl_dim|class_frac|realism_step)_\d+$")
_FIRST = {"kl_dim": "00", "class_frac": "0", "realism_step": "1"}


def key_requirement(key: str, split: str = "test") -> str | None:
    """What an evaluation on `split` must include for eval.json to hold `key`: "" (always),
    a group name, "vae+<group>" (that group, on a VAE run), or None (no such key).
    A key two groups write (classifier/test_accuracy) names the first of GROUPS."""
    key = _NUMBERED.sub(lambda m: f"/{m[1]}_{_FIRST[m[1]]}", key)
    keys_of = functools.partial(eval_keys, split, latent_dim=1, steps=1, classes=1)
    if key in keys_of(is_vae=False, groups=()):
        return ""
    for group in GROUPS:
        for is_vae, need in ((False, group), (True, f"vae+{group}")):
            if key in keys_of(is_vae=is_vae, groups=[group]):
                return need
    return None


# ---- single keys that consumers read by name (the study runner and its report) ----------------
def key_of(group: type, name: str, split: str = "test", mode: str = "") -> str:
    """The eval.json key of field `name` of a group: key_of(Reconstruction, "sse") == "test/sse"."""
    k = {f.name: f.metadata["key"] for f in dataclasses.fields(group)}[name]
    return str(k.template.format(split=split, mode=mode))


def interp_key(mode: str, name: str) -> str:
    """interp_key("lerp", "min_conf") == "interp/lerp/min_conf"; `mode` one of PATH_MODES."""
    return key_of(PathMeasures, name, mode=mode)


TEST_SSE = key_of(Reconstruction, "sse")
TEST_MSE = key_of(Reconstruction, "mse")
TEST_KL = key_of(Reconstruction, "kl")
TEST_ACTIVE_UNITS = key_of(Reconstruction, "active_units")
TEST_ELBO = key_of(Likelihood, "elbo")
TEST_IW_NLL = key_of(Likelihood, "iw_nll")
TEST_IW_NLL_SE = key_of(Likelihood, "iw_nll_se")
TEST_NEG_ELBO_SAME_IMAGES = key_of(Likelihood, "neg_elbo_same_images")
RECON_FD = key_of(Reconstruction, "fd")
RECON_ACCURACY = key_of(Reconstruction, "accuracy")
RECON_REALISM_MEDIAN = key_of(Reconstruction, "realism_median")
SAMPLES_FD = key_of(SampleQuality, "fd")
SAMPLES_PRECISION = key_of(SampleQuality, "precision")
SAMPLES_RECALL = key_of(SampleQuality, "recall")
SAMPLES_PR_K = key_of(SampleQuality, "pr_k")
SAMPLES_PR_N = key_of(SampleQuality, "pr_n")
SAMPLES_CLASS_ENTROPY = key_of(SampleQuality, "class_entropy")
SAMPLES_CONFIDENCE = key_of(SampleQuality, "confidence")
REAL_CONFIDENCE = key_of(SampleQuality, "real_confidence")
FLOOR_FD = key_of(SampleQuality, "floor_fd")
FLOOR_PRECISION = key_of(SampleQuality, "floor_precision")
FLOOR_RECALL = key_of(SampleQuality, "floor_recall")
PROBE_LINEAR = key_of(Probes, "linear_acc")
PROBE_KNN = key_of(Probes, "knn_acc")
PROBE_N_TRAIN = key_of(Probes, "n_train")
EVAL_TIME = "eval/time_s"
