"""Every key an evaluation writes into eval.json, per metric group: the schema that consumers
(the study, sweeps checking an objective before their first trial) read instead of keeping their
own lists. tests/test_evaluate.py checks it against real eval.json files of an AE and a VAE, for
all groups and for the selection groups.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vaelab.config import GROUPS
from vaelab.evaluate.context import PATH_MODES

BOOKKEEPING = ("eval/n_images", "eval/seed", "eval/time_s", "eval/figures")
REALISM = ("realism_median", "realism_p90", "realism_worst")


def _reconstruction(split: str, is_vae: bool, latent_dim: int) -> set[str]:
    keys = {f"{split}/{k}" for k in ("sse", "mse", "bce")}
    keys |= {"classifier/test_accuracy", "recon/classifier_accuracy", "recon/fd"}
    keys |= {"recon/precision", "recon/recall", "recon/realism_median", "recon/realism_p90"}
    if is_vae:
        keys |= {f"{split}/kl", f"{split}/active_units"}
        keys |= {f"{split}/kl_dim_{i:02d}" for i in range(latent_dim)}
    return keys


def _likelihood(split: str, is_vae: bool) -> set[str]:
    if not is_vae:
        return set()
    names = ("elbo", "iw_nll", "iw_bits_per_dim", "iw_k", "iw_n_images", "iw_time_s")
    return {f"{split}/{k}" for k in (*names, "neg_elbo_same_images")}


def _samples(classes: int) -> set[str]:
    keys = {"classifier/test_accuracy", "samples/fd", "floor/fd_train_vs_test"}
    keys |= {"samples/precision", "samples/recall", "floor/precision", "floor/recall"}
    keys |= {"samples/pr_n", "samples/pr_k", "samples/class_entropy", "samples/confidence"}
    keys |= {"real/confidence"} | {f"samples/class_frac_{c}" for c in range(classes)}
    return keys


def _interpolation(steps: int) -> set[str]:
    keys = set()
    for mode in PATH_MODES:
        pre = f"interp/{mode}/"
        keys |= {pre + k for k in ("mean_conf", "min_conf", *REALISM)}
        keys |= {f"{pre}realism_step_{i}" for i in range(1, steps + 1)}
        if mode != "pixel":
            keys |= {pre + "path_length_ratio", pre + "max_step_fraction"}
    return keys


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
    with these metric groups, `steps` interpolation steps and a `classes`-way classifier."""
    keys = set(BOOKKEEPING) | {f"eval/group/{g}" for g in GROUPS}
    if "reconstruction" in groups:
        keys |= _reconstruction(split, is_vae, latent_dim)
    if "likelihood" in groups:
        keys |= _likelihood(split, is_vae)
    if "samples" in groups:
        keys |= _samples(classes)
    if "probes" in groups:
        keys |= {"probe/linear_acc", "probe/knn_acc", "probe/n_train"}
    if "interpolation" in groups:
        keys |= _interpolation(steps)
    return keys


# Numbered key families, written with their first member in the canonical form.
_NUMBERED = (
    (re.compile(r"(/kl_dim_)\d+$"), r"\g<1>00"),
    (re.compile(r"(/class_frac_)\d+$"), r"\g<1>0"),
    (re.compile(r"(/realism_step_)\d+$"), r"\g<1>1"),
)


def key_requirement(key: str, split: str = "test") -> str | None:
    """What an evaluation on `split` must include for eval.json to hold `key`: "" (always),
    a group name, "vae+<group>" (that group, on a VAE run), or None (no such key).
    A key two groups write (classifier/test_accuracy) names the first of GROUPS."""
    for pattern, first in _NUMBERED:
        key = pattern.sub(first, key)
    if key in eval_keys(split, is_vae=False, latent_dim=1, groups=(), steps=1, classes=1):
        return ""
    for group in GROUPS:
        for is_vae, need in ((False, group), (True, f"vae+{group}")):
            if key in eval_keys(
                split, is_vae=is_vae, latent_dim=1, groups=[group], steps=1, classes=1
            ):
                return need
    return None


# ---- single keys that consumers read by name (the study runner and its report) ----------------
# tests/test_study_schema.py checks that each is one of eval_keys(...), so a key renamed in the
# evaluation fails there, not in a sentence of the report.
def split_key(name: str, split: str = "test") -> str:
    """The key of a per-split measure: split_key("sse") == "test/sse"."""
    return f"{split}/{name}"


def interp_key(mode: str, name: str) -> str:
    """The key of an interpolation measure: interp_key("lerp", "min_conf") ==
    "interp/lerp/min_conf"; `mode` is one of PATH_MODES."""
    return f"interp/{mode}/{name}"


TEST_SSE = split_key("sse")
TEST_MSE = split_key("mse")
TEST_KL = split_key("kl")
TEST_ELBO = split_key("elbo")
TEST_IW_NLL = split_key("iw_nll")
TEST_NEG_ELBO_SAME_IMAGES = split_key("neg_elbo_same_images")
TEST_ACTIVE_UNITS = split_key("active_units")
RECON_FD = "recon/fd"
RECON_ACCURACY = "recon/classifier_accuracy"
RECON_REALISM_MEDIAN = "recon/realism_median"
SAMPLES_FD = "samples/fd"
SAMPLES_PRECISION = "samples/precision"
SAMPLES_RECALL = "samples/recall"
SAMPLES_PR_K = "samples/pr_k"
SAMPLES_PR_N = "samples/pr_n"
SAMPLES_CLASS_ENTROPY = "samples/class_entropy"
SAMPLES_CONFIDENCE = "samples/confidence"
REAL_CONFIDENCE = "real/confidence"
FLOOR_FD = "floor/fd_train_vs_test"
FLOOR_PRECISION = "floor/precision"
FLOOR_RECALL = "floor/recall"
PROBE_LINEAR = "probe/linear_acc"
PROBE_KNN = "probe/knn_acc"
PROBE_N_TRAIN = "probe/n_train"
EVAL_TIME = "eval/time_s"
