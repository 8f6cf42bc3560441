"""Evaluation: likelihood bounds, sample quality, representation probes, interpolation, figures."""

from vaelab import callable_package
from vaelab.config import GROUPS, SELECTION_GROUPS, EvalConfig
from vaelab.evaluate.data import EvalData, load_eval_data
from vaelab.evaluate.run import eval_data_for, evaluate_run

__all__ = [
    "GROUPS",
    "SELECTION_GROUPS",
    "EvalConfig",
    "EvalData",
    "eval_data_for",
    "evaluate_run",
    "load_eval_data",
]

callable_package(__name__)
