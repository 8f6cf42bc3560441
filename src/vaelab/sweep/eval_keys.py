"""The keys of eval.json, so a sweep's objective is checked before its first trial.

`vaelab.evaluation.run` writes these; tests/test_sweep_config.py compares this list with a real
eval.json, so a key added or renamed there fails a test here instead of a sweep hours in.
"""

from __future__ import annotations

import re

# {split}/<name>, for every run
PER_SPLIT_KEYS = ("sse", "mse", "bce")
# {split}/<name>, VAE runs only (they need a posterior)
PER_SPLIT_VAE_KEYS = (
    "elbo",
    "kl",
    "active_units",
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
    "probe/linear_acc",
    "probe/knn_acc",
    "probe/n_train",
    *(
        f"interp/{mode}/{name}"
        for mode in ("lerp", "slerp")
        for name in ("mean_conf", "min_conf", "path_length_ratio", "max_step_fraction")
    ),
)
# numbered families: samples/class_frac_<class>, {split}/kl_dim_<dim> (VAE)
_CLASS_FRAC = re.compile(r"samples/class_frac_\d+")
_KL_DIM = re.compile(r"kl_dim_\d\d+")


def eval_key_known(key: str, split: str, is_vae: bool) -> bool:
    """Whether evaluating a run (VAE or not) on `split` writes `key` into eval.json."""
    if key in FIXED_KEYS or _CLASS_FRAC.fullmatch(key):
        return True
    prefix, _, name = key.partition("/")
    if prefix != split:
        return False
    if name in PER_SPLIT_KEYS:
        return True
    return is_vae and (name in PER_SPLIT_VAE_KEYS or bool(_KL_DIM.fullmatch(name)))


def expected_keys(split: str, is_vae: bool, latent_dim: int, classes: int = 10) -> set[str]:
    """Every key eval.json holds for such a run (for the consistency test)."""
    keys = set(FIXED_KEYS) | {f"samples/class_frac_{c}" for c in range(classes)}
    keys |= {f"{split}/{n}" for n in PER_SPLIT_KEYS}
    if is_vae:
        keys |= {f"{split}/{n}" for n in PER_SPLIT_VAE_KEYS}
        keys |= {f"{split}/kl_dim_{i:02d}" for i in range(latent_dim)}
    return keys
