"""Evaluation: likelihood bounds, sample quality, representation probes, interpolation, figures."""

from vaelab.evaluation.run import EvalConfig, evaluate_run

__all__ = ["EvalConfig", "evaluate_run"]
