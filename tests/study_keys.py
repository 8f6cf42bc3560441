"""The key tree of study.json, pinned: what `vaelab study` wrote before its result became typed
dataclasses (vaelab.study.schema), plus the four keys the β search on Optuna added
(runs::*::host, runs::*::run_dir, search::storage, search::study_name). tests/test_study.py
checks a smoke study against it and tests/test_study_schema.py checks StudyResult.to_dict()."""

from __future__ import annotations

from typing import Any

SEP = "::"
# Dicts keyed by data (run names, β, splits, stages, model labels): one "*" stands for any key.
DATA_KEYED = {
    "runs",
    "search::trial_runs",
    "search::rungs::*::selection_loss",
    "search::rungs::*::runs",
    "code_stats",
    "interpolation",
    "representation",
    "stage_time_s",
    "data::splits",
}
# Dicts whose keys another schema owns: StudyConfig, TrainConfig, the training summary, eval.json
# (vaelab.evaluate.keys, checked by tests/test_evaluate.py).
OWNED = {"config", "runs::*::config", "runs::*::train", "runs::*::eval"}

STUDY_JSON_KEYS = {
    "baselines",
    "baselines::mean_image_sse",
    "baselines::prior_norm",
    "classifier",
    "classifier::epochs",
    "classifier::test_accuracy",
    "classifier::train_images",
    "classifier::variant",
    "code_stats",
    "code_stats::*",
    "code_stats::*::dim_mean_abs_max",
    "code_stats::*::dim_std_max",
    "code_stats::*::dim_std_min",
    "code_stats::*::norm_mean",
    "code_stats::*::prior_nn_ratio",
    "compute_time_s",
    "config",
    "data",
    "data::cache",
    "data::dataset",
    "data::source",
    "data::splits",
    "data::splits::*",
    "data::splits::*::count",
    "data::splits::*::label_counts",
    "data::splits::*::pixel_mean",
    "data::splits::*::sha256",
    "data::splits::*::shape",
    "env",
    "env::argv",
    "env::cpu_count",
    "env::device",
    "env::git_commit",
    "env::numpy",
    "env::platform",
    "env::processor",
    "env::python",
    "env::torch",
    "env::torch_threads",
    "env::vaelab",
    "interpolation",
    "interpolation::*",
    "interpolation::*::mean_conf",
    "interpolation::*::min_conf",
    "interpolation::*::realism_median",
    "interpolation::*::realism_p90",
    "interpolation::*::realism_worst",
    "representation",
    "representation::*",
    "representation::*::probe/knn_acc",
    "representation::*::probe/linear_acc",
    "run_order",
    "runs",
    "runs::*",
    "runs::*::beta",
    "runs::*::config",
    "runs::*::dir",
    "runs::*::epochs",
    "runs::*::eval",
    "runs::*::evaluation",
    "runs::*::model",
    "runs::*::name",
    "runs::*::host",
    "runs::*::reused",
    "runs::*::run_dir",
    "runs::*::stage",
    "runs::*::train",
    "runs::*::train_images",
    "search",
    "search::best_decade",
    "search::chosen_beta",
    "search::eligible",
    "search::fallback",
    "search::log",
    "search::method",
    "search::reason",
    "search::rule",
    "search::storage",
    "search::study_name",
    "search::rungs",
    "search::rungs::*::epochs",
    "search::rungs::*::limit_train",
    "search::rungs::*::promoted",
    "search::rungs::*::rung",
    "search::rungs::*::runs",
    "search::rungs::*::runs::*",
    "search::rungs::*::selection_loss",
    "search::rungs::*::selection_loss::*",
    "search::trial_runs",
    "search::trial_runs::*",
    "search::trials",
    "stage_order",
    "stage_time_s",
    "stage_time_s::*",
    "train_images",
    "tuned",
    "wall_time_s",
}
OPTIONAL = {"env::gpu", "data::classes"}  # on CUDA devices only; a labelled picture folder only

# `config`: StudyConfig's flat record (vaelab.config.OPTIONS), pinned here too so that a new
# option is a decision. Picture folders added `image_size` and `color` (their import settings:
# null for MNIST, Fashion-MNIST and a folder imported with its own size and colour); the speed
# work added `channels_last` and `fused_adam` (the training memory layout and Adam's kernel: both
# true in the default preset).
CONFIG_KEYS = {
    *("ae_epochs", "batch_size", "channels", "channels_last", "classifier", "color"),
    *("data_dir", "dataset", "fused_adam"),
    *("decades", "device", "eval_limit", "extreme_epochs", "grace_period", "halving_eta"),
    *("halving_rungs", "heartbeat_interval", "image_size", "iw_limit", "iw_samples"),
    *("latent_dim", "limit_train", "limit_val", "lr", "lr_schedule", "max_extensions"),
    *("max_retry", "min_class_entropy", "min_recon_accuracy", "n_samples", "out", "preset"),
    *("probe_train", "refine", "search", "seed", "selection_limit", "selection_samples"),
    *("trial_epochs", "trial_evaluation", "trial_kl_warmup_steps", "trial_limit_train"),
    *("tuned_epochs", "warmup_steps"),
}


def key_tree(node: Any, path: str = "") -> set[str]:
    """Every key path of study.json's content, data keys as "*", list items as "*"."""
    out: set[str] = set()
    if path in OWNED:
        return out
    if isinstance(node, dict):
        for key, value in node.items():
            sub = "*" if path in DATA_KEYED else key
            p = f"{path}{SEP}{sub}" if path else sub
            out |= {p} | key_tree(value, p)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict):
                out |= key_tree(value, f"{path}{SEP}*")
    return out
