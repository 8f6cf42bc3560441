"""vaelab: train, evaluate and explain auto-encoders and beta-VAEs on MNIST-like images.

The public Python API mirrors the command line. `import vaelab` runs nothing and imports no
heavy module: the functions import on call, and the classes below are loaded on first use
(`vaelab.TrainConfig` imports `vaelab.config` then), typed for checkers through TYPE_CHECKING.

    cfg = vaelab.TrainConfig(model="vae", beta=1.0, epochs=20)
    run = vaelab.train(cfg, "runs/vae")                     # -> RunResult
    metrics = vaelab.evaluate("runs/vae", vaelab.EvalConfig(iw_samples=1000))
    result = vaelab.study(vaelab.make_config("default", out="study"))
    x, labels = vaelab.load_images("mnist", "test", limit=16)
    images = vaelab.sample(run, 64)                     # also encode, reconstruct, interpolate
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaelab.config import TrainConfig
    from vaelab.decoding import encode, interpolate, load_images, reconstruct, sample
    from vaelab.distributions import DiagonalGaussian
    from vaelab.evaluate import EvalConfig
    from vaelab.study import StudyConfig, StudyResult, load_study, make_config
    from vaelab.study.search import SearchPlacement
    from vaelab.train.loop import EpochCallback, RunResult

__version__ = "0.2.0"

# name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {
    name: module
    for module, names in {
        "vaelab.config": ["TrainConfig"],
        "vaelab.distributions": ["DiagonalGaussian"],
        "vaelab.evaluate": ["EvalConfig"],
        "vaelab.study": ["StudyConfig", "StudyResult", "load_study", "make_config"],
        "vaelab.study.search": ["SearchPlacement"],
        "vaelab.train.loop": ["RunResult"],
        "vaelab.decoding": ["encode", "interpolate", "load_images", "reconstruct", "sample"],
    }.items()
    for name in names
}
__all__ = [
    "DiagonalGaussian",
    "EvalConfig",
    "RunResult",
    "SearchPlacement",
    "StudyConfig",
    "StudyResult",
    "TrainConfig",
    "__version__",
    "encode",
    "evaluate",
    "interpolate",
    "load_images",
    "load_study",
    "make_config",
    "reconstruct",
    "sample",
    "study",
    "train",
]


def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A PEP 562 module `__getattr__`: `name` is imported from `table[name]` on first access."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_attributes(__name__, _LAZY)


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    tensorboard: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> RunResult:
    """Train `config` into `out_dir`; `on_epoch_end(epoch, record)` returning True stops it."""
    from vaelab.train.loop import train as run_training

    return run_training(
        config, out_dir, resume=resume, tensorboard=tensorboard, on_epoch_end=on_epoch_end
    )


def evaluate(
    run_dir: str | Path, config: EvalConfig | None = None, **options: Any
) -> dict[str, float]:
    """A finished run's eval.json metrics; `options`: EvalConfig fields when `config` is None."""
    from vaelab.evaluate import evaluate_run

    return evaluate_run(run_dir, config, **options)


def study(config: StudyConfig, placement: SearchPlacement | None = None) -> StudyResult:
    """Run (or finish) the study; `placement`: where the β search's trials queue and train."""
    from vaelab.study import run_study

    return run_study(config, placement)


# `vaelab.train`, `vaelab.evaluate` and `vaelab.study` name both a function above and a package
# (train/, evaluate/, study/). Importing a package binds its name on `vaelab`, replacing the
# function, so each of those packages calls `callable_package` to forward calls to it.
_FUNCTIONS: dict[str, Callable[..., Any]] = {"train": train, "evaluate": evaluate, "study": study}


class _PublicPackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _FUNCTIONS[self.__name__.rpartition(".")[2]](*args, **kwargs)


def callable_package(name: str) -> None:
    """Make the package `name` (one of vaelab.train/evaluate/study) callable as the function."""
    module = sys.modules[name]
    module.__class__ = _PublicPackage
    module.__wrapped__ = _FUNCTIONS[name.rpartition(".")[2]]  # type: ignore[attr-defined]
