"""Where a run executes and how it is made reproducible: device choice, seeding, the record of
the environment, progress bars and per-run log files. Training, evaluation and the study all
import these from here (none of them owns them)."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vaelab import __version__
from vaelab.config import DEVICE_PATTERN
from vaelab.errors import ConfigError

# Every random stream of vaelab as (offset, scale): its seed is seed·scale + offset + key, from the
# one `seed` of its run (or command). The values are those vaelab 0.1 used, so results stay bitwise
# reproducible; tests/test_seeding.py pins them. A loader hashes its stream's seed with the epoch
# (data/loader.py `_epoch_seed`), so one stream gives every epoch its own draws.
SEED_STREAMS: dict[str, tuple[int, int]] = {
    # training (train/loop.py)
    "train_init": (0, 1),  # Python/NumPy/torch global RNGs: initial weights, q(z|x) noise
    "train_order": (0, 1),  # epoch permutations and dynamic binarisation of the train split
    "val_binarize": (1, 1),  # the one static binarisation draw of the validation split
    "val_noise": (10_007, 1),  # q(z|x) samples of validation losses (a forked global RNG)
    # evaluation (evaluation/), seeded from EvalConfig.seed
    "eval_global": (0, 1),  # torch's global RNG: unused by design, seeded as a safety net
    "eval_samples": (1, 1),  # z ~ N(0, I) of the sample metrics and figures
    "eval_binarize": (7, 1),  # binarisation / dequantisation of the evaluated images
    "eval_likelihood": (11, 1),  # q(z|x) samples of the ELBO and the IW-NLL
    "eval_pairs": (0, 131),  # test images joined per label pair (a, b): key 10a+b
    # the study's code statistics (study/runner.py), seeded from StudyConfig.seed
    "study_prior": (3, 1),  # z ~ N(0, I) of the off-manifold test
    "study_code_noise": (13, 1),  # z ~ q(z|x) of the same test (was torch's global RNG)
    # commands seeded by the user's --seed
    "user_samples": (0, 1),  # `vaelab sample` and the explorer: same seed, same images
    # the reference classifier (evaluation/classifier.py), seeded from its own seed, not a run's
    "classifier": (0, 1),  # its initial weights and batch order
}


def stream_seed(seed: int, stream: str, key: int = 0) -> int:
    """The seed of one named random stream (see `SEED_STREAMS`); `key` picks one of a family."""
    offset, scale = SEED_STREAMS[stream]
    return seed * scale + offset + key


def check_device(name: str, flag: str = "--device") -> None:
    """Syntax and availability of a device name, without allocating anything on it."""
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"invalid {flag} {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"invalid {flag} {name}: CUDA is unavailable here; use cpu or auto")
    if name.startswith("cuda") and int(name.partition(":")[2] or 0) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ConfigError(
            f"invalid {flag} {name}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"invalid {flag} mps: MPS is unavailable here; use cpu or auto")


def resolve_device(name: str, flag: str = "--device") -> torch.device:
    """The torch device of a checked name (`check_device`); `auto` is cuda, then mps, then cpu."""
    check_device(name, flag)
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global RNGs (CPU and every CUDA device) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, hardware and source revision, saved as env.json for reproducibility."""
    commit, here = None, Path(__file__).parent
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, timeout=5)
        commit = git.stdout.decode().strip() or None
    env = {
        "vaelab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": commit,
        "argv": sys.argv,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def progress(iterable: Iterable[Any], disable: bool | None = None, **kw: Any) -> Iterator[Any]:
    """A tqdm bar when a person watches stderr, silent otherwise (logs go to the run's files)."""
    off = not sys.stderr.isatty() if disable is None else disable
    return tqdm(iterable, disable=off, leave=False, dynamic_ncols=True, **kw)


def file_logger(name: str, path: Path, fmt: str = "%(asctime)s %(levelname)s %(message)s"):
    """A logger that writes only to `path` (replacing handlers from an earlier call)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    close_logger(logger)
    fh = logging.FileHandler(path)
    fh.setFormatter(logging.Formatter(fmt))
    logger.addHandler(fh)
    return logger


def close_logger(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()


@contextlib.contextmanager
def signal_handlers(signals: Iterable[int], handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for `signals` while the block runs; off the main thread (no handlers) a no-op."""
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
