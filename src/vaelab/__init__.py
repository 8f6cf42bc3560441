"""vaelab: train, evaluate and explain auto-encoders and beta-VAEs on MNIST-like images.

The public Python API mirrors the command line; heavy modules are imported lazily so that
`import vaelab` stays fast and runs nothing.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "study", "train"]


def train(config: Any, out_dir: Any, **kwargs: Any) -> Any:
    """Train a `TrainConfig` into the run directory `out_dir` -> `RunResult`; see
    `vaelab.training.train` (keyword `resume=True` continues a run)."""
    from vaelab.training import train as _train

    return _train(config, out_dir, **kwargs)


def evaluate(run_dir: Any, **kwargs: Any) -> Any:
    """Evaluate a finished run; see `vaelab.evaluation.evaluate_run`."""
    from vaelab.evaluation import evaluate_run

    return evaluate_run(run_dir, **kwargs)


def study(config: Any) -> Any:
    """Run the whole study from a `StudyConfig` (`vaelab.study.make_config("default", out=...)`);
    see `vaelab.study.run_study`."""
    from vaelab.study import run_study

    return run_study(config)
