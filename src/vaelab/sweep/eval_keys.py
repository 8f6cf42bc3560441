"""The keys of eval.json, so a sweep's objective is checked before its first trial.

`vaelab.evaluation.run` writes these; tests/test_sweep.py compares this list with a real
eval.json, so a key added or renamed there fails a test here instead of a sweep hours in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# {split}/<name>, for every run
PER_SPLIT_KEYS = ("sse", "mse", "bce")
# {split}/<name>, VAE runs only (they need a posterior); numbered: kl_dim_<dim>
PER_SPLIT_VAE_KEYS = ("elbo", "kl", "active_units")
# {split}/<name>, VAE runs whose evaluation includes the `likelihood` group
PER_SPLIT_IW_KEYS = (
    "iw_nll",
    "iw_bits_per_dim",
    "iw_k",
    "iw_n_images",
    "iw_time_s",
    "neg_elbo_same_images",
)
FIXED_KEYS = (
    "eval/n_images",
    "eval/seed",
    "eval/time_s",
    "classifier/test_accuracy",
    "samples/fd",
    "recon/fd",
    "floor/fd_train_vs_test",
    "samples/class_entropy",
    "samples/confidence",
    "real/confidence",
    "recon/classifier_accuracy",
)
GROUP_KEYS = {  # keys an optional evaluation group adds
    "probes": ("probe/linear_acc", "probe/knn_acc", "probe/n_train"),
    "interpolation": tuple(
        f"interp/{mode}/{name}"
        for mode in ("lerp", "slerp")
        for name in ("mean_conf", "min_conf", "path_length_ratio", "max_step_fraction")
    ),
}
_CLASS_FRAC = re.compile(r"samples/class_frac_\d+")
_KL_DIM = re.compile(r"kl_dim_\d\d+")


def key_requirement(key: str, split: str) -> str | None:
    """What evaluating a run must include for eval.json to hold `key`: "" (always), "vae",
    "vae+likelihood", a group name ("probes", "interpolation"), or None (no such key)."""
    if key in FIXED_KEYS or _CLASS_FRAC.fullmatch(key):
        return ""
    for group, keys in GROUP_KEYS.items():
        if key in keys:
            return group
    prefix, _, name = key.partition("/")
    if prefix != split:
        return None
    if name in PER_SPLIT_KEYS:
        return ""
    if name in PER_SPLIT_VAE_KEYS or _KL_DIM.fullmatch(name):
        return "vae"
    if name in PER_SPLIT_IW_KEYS:
        return "vae+likelihood"
    return None


def expected_keys(
    split: str, is_vae: bool, latent_dim: int, groups: Iterable[str], classes: int = 10
) -> set[str]:
    """Every key eval.json holds for such a run (for the consistency test)."""
    groups = set(groups)
    keys = set(FIXED_KEYS) | {f"samples/class_frac_{c}" for c in range(classes)}
    keys |= {f"{split}/{n}" for n in PER_SPLIT_KEYS}
    for group, group_keys in GROUP_KEYS.items():
        if group in groups:
            keys |= set(group_keys)
    if is_vae:
        keys |= {f"{split}/{n}" for n in PER_SPLIT_VAE_KEYS}
        keys |= {f"{split}/kl_dim_{i:02d}" for i in range(latent_dim)}
        if "likelihood" in groups:
            keys |= {f"{split}/{n}" for n in PER_SPLIT_IW_KEYS}
    return keys
