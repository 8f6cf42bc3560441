"""Evaluation: likelihood bounds, sample quality, representation probes, interpolation, figures."""

from vaelab.evaluation.config import GROUPS, SELECTION_GROUPS, EvalConfig
from vaelab.evaluation.data import EvalData, load_eval_data
from vaelab.evaluation.run import eval_data_for, evaluate_run

__all__ = [
    "GROUPS",
    "SELECTION_GROUPS",
    "EvalConfig",
    "EvalData",
    "eval_data_for",
    "evaluate_run",
    "load_eval_data",
]
