"""vaelab: train, evaluate and explain auto-encoders and beta-VAEs on MNIST-like images.

The public Python API mirrors the command line; heavy modules are imported lazily so that
`import vaelab` stays fast and runs nothing.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "study", "train"]


def train(config: Any) -> Any:
    """Train a model from a `TrainConfig`; see `vaelab.training.train`."""
    from vaelab.training import train as _train

    return _train(config)


def evaluate(run_dir: Any, **kwargs: Any) -> Any:
    """Evaluate a finished run; see `vaelab.evaluation.evaluate_run`."""
    from vaelab.evaluation import evaluate_run

    return evaluate_run(run_dir, **kwargs)


def study(config: Any) -> Any:
    """Run the whole study; see `vaelab.study.run_study`."""
    from vaelab.study import run_study

    return run_study(config)
