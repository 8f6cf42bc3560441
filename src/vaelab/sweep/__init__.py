"""Hyperparameter sweeps on Optuna: `run_sweep` trains and evaluates trials as run directories
in a study stored in SQLite (default) or PostgreSQL (several machines); `report` renders it."""

from vaelab.sweep.config import SweepConfig
from vaelab.sweep.parse import load_sweep, parse_sweep
from vaelab.sweep.report import report
from vaelab.sweep.runner import SweepResult, run_sweep

__all__ = ["SweepConfig", "SweepResult", "load_sweep", "parse_sweep", "report", "run_sweep"]
