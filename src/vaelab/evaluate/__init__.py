"""Evaluation: likelihood bounds, sample quality, representation probes, interpolation, figures.

Importing this package (or a torch-free module in it: keys, config, arrays) imports no torch;
the names below load their modules on first use, as `vaelab` does (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vaelab import callable_package, lazy_attributes
from vaelab.config import GROUPS, SELECTION_GROUPS, EvalConfig

if TYPE_CHECKING:
    from vaelab.evaluate.context import EvalData, eval_data_for, load_eval_data
    from vaelab.evaluate.metrics import evaluate_run

_LAZY = dict.fromkeys(("EvalData", "eval_data_for", "load_eval_data"), "vaelab.evaluate.context")
_LAZY["evaluate_run"] = "vaelab.evaluate.metrics"
__all__ = [
    "GROUPS",
    "SELECTION_GROUPS",
    "EvalConfig",
    "EvalData",
    "eval_data_for",
    "evaluate_run",
    "load_eval_data",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
callable_package(__name__)
