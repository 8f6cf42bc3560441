"""Checks that run before any work: output paths, devices, datasets and memory.

Each check raises a one-line `VaelabError` naming the problem and the fix, so a mistake costs
milliseconds instead of the minutes of training or evaluation that would precede it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import TrainConfig, available_cores
from vaelab.data import load_arrays
from vaelab.data.sources import FILES
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError, DataError
from vaelab.models import ConvEncoder, build_model
from vaelab.runtime import check_device, resolve_device
from vaelab.train import checkpoint

# Above this share of the available memory a run is refused: the estimate ignores allocator
# overhead and the rest of the process (datasets, the classifier, Python itself).
MEMORY_SHARE = 0.8


# --------------------------------------------------------------------------- paths
def _check_out(path: str | Path, flag: str = "--out", *, folder: bool) -> Path:
    """An output folder or file: it exists or can be created, below a folder we can write in."""
    kind, example = ("folder", "runs/x") if folder else ("file", "figure.png")
    if not str(path).strip():
        raise ConfigError(f"{flag} is empty; give a {kind} path (e.g. {flag} {example})")
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise ConfigError(f"{flag} {p} is a dangling symbolic link; remove it or choose another")
    if folder and p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} is an existing file, not a folder; choose a folder path")
    if not folder and (p.is_dir() or str(path).endswith(os.sep)):
        raise ConfigError(f"{flag} {p} is a folder; give a file path such as {p / 'figure.png'}")
    # the nearest existing ancestor must be a folder we can create files in
    base = next(a for a in (p.absolute(), *p.absolute().parents) if a.exists())
    if not base.is_dir():
        raise ConfigError(
            f"{flag} {p}: {base} is a file, so nothing can be created below it; choose another path"
        )
    try:  # os.access is wrong for root and for read-only mounts: try it for real
        fd, tmp = tempfile.mkstemp(prefix=".vaelab-probe-", dir=base)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ConfigError(
            f"{flag} {p}: cannot write in {base} ({e.strerror}); choose a writable location"
        ) from None
    return p


check_out_dir = functools.partial(_check_out, folder=True)
check_out_file = functools.partial(_check_out, folder=False)


# --------------------------------------------------------------------------- devices
def check_processes(flag: str, n: int, threads: int | None) -> None:
    """`n` local processes (`--nproc`, `--workers`) of `threads` torch threads each (None: the
    cores shared out) must fit the cores. Refused, not warned: like --threads above the cores
    (~30x slower), processes sharing cores slow each other (and DDP waits for the slowest)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{flag} must be an integer >= 1, got {n!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be an integer >= 1, got {threads!r}")
    cores = available_cores()
    if threads is None and n > cores:
        raise ConfigError(
            f"{flag} {n} > the {cores} cores available here; each process needs a core of its "
            f"own: use 1..{cores}"
        )
    if threads is not None and n * threads > cores:
        raise ConfigError(
            f"{flag} {n} × --threads {threads} = {n * threads} threads > the {cores} cores "
            "available here; lower one of them"
        )


def threads_per_process(n: int, threads: int | None) -> int | None:
    """torch threads of each of `n` local processes: `threads` if given, else an even share of
    the cores; None for one process (PyTorch's default, all cores)."""
    if threads is not None or n == 1:
        return threads
    return max(1, available_cores() // n)


# --------------------------------------------------------------------------- datasets
def min_image_size() -> int:
    """The smallest square image the encoder maps to a >= 1x1 feature map (28 for the
    reference architecture), found from the encoder itself so it follows `models.py`."""
    with torch.device("meta"):
        for size in range(1, 1025):
            try:
                ConvEncoder(1, size, [1, 1, 1, 1], 1, norm=False)
            except ValueError:
                continue
            return size
    raise AssertionError("the encoder accepts no image size up to 1024")  # pragma: no cover


def check_splits(arrays: dict[str, np.ndarray], cfg: TrainConfig | None, origin: str) -> None:
    """Non-empty splits of square images, equal in size across splits, big enough for the
    encoder; with `cfg`, enough training images for BatchNorm."""
    shapes = {name: arrays[name].shape for name in (FILES[0], FILES[2])}
    for name, shape in shapes.items():
        if len(shape) not in (3, 4):
            raise DataError(
                f"{origin}: {name} holds {len(shape)}-d data; images are (N, [C,] H, W)"
            )
        if shape[-2] != shape[-1]:
            raise DataError(
                f"{origin}: {name} holds {shape[-2]}x{shape[-1]} images; the encoder needs "
                "square images (crop or pad them)"
            )
    (tr, te) = shapes.values()
    if tr[1:] != te[1:]:
        raise DataError(
            f"{origin}: train images are {tr[-2]}x{tr[-1]} but test images {te[-2]}x{te[-1]}; "
            "both splits must have the same size"
        )
    smallest = min_image_size()
    if tr[-1] < smallest:
        raise DataError(
            f"{origin}: {tr[-1]}x{tr[-1]} images are too small for the encoder (its four "
            f"convolutions need at least {smallest}x{smallest}); upscale or pad them"
        )
    for split in ("train", "val", "test"):
        if len(split_arrays(arrays, split)[0]) == 0:
            raise DataError(
                f"{origin}: the {split} split is empty ({tr[0]} train and {te[0]} test images; "
                "val is the last 1/6 of train, at most 10,000); add images"
            )
    if cfg is not None and cfg.norm:
        n = len(split_arrays(arrays, "train")[0][: cfg.limit_train])
        if n < 2:
            raise DataError(
                f"{origin}: {n} training image(s); BatchNorm needs batches of at least 2 "
                "(add images, raise --limit-train or pass --no-norm)"
            )


# --------------------------------------------------------------------------- memory
def available_memory(device: torch.device) -> int:
    """Bytes that an allocation on `device` may use: free GPU memory, or MemAvailable (CPU, MPS)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_model_fits(cfg: TrainConfig, image_shape: tuple[int, int, int], n_train: int) -> None:
    """Refuse a model or batch whose training step would not fit in memory, with the numbers:
    parameters and activations counted by a forward pass on the meta device (nothing allocated)."""
    batch = max(1, min(cfg.batch_size, n_train))
    with torch.device("meta"):
        model = build_model(cfg, image_shape)
    params = sum(p.numel() for p in model.parameters())
    acts = [0]

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            acts[0] += output.numel()

    for m in model.modules():
        if not list(m.children()):  # leaves only: a container's output is a leaf's
            m.register_forward_hook(count)  # dropped with this throwaway model
    model.train()
    model(torch.empty((batch, *image_shape), device="meta"))
    # fp32: weights + gradients + two Adam moments; activations kept for backward + their grads.
    need = 4 * (4 * params) + 4 * (2 * acts[0])
    have = available_memory(resolve_device(cfg.device))
    if need > MEMORY_SHARE * have:
        raise ConfigError(
            f"the model does not fit: {params:,} parameters and {acts[0]:,} "
            f"activations per batch of {batch} need ~{need / 2**30:.1f} GiB to train, "
            f"{have / 2**30:.1f} GiB available; lower --latent-dim, --channels or --batch-size"
        )


# --------------------------------------------------------------------------- all of it
def check_data(cfg: TrainConfig) -> None:
    """The dataset `cfg` trains on: its splits (`check_splits`), and whether the model fits."""
    arrays = load_arrays(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.color)
    check_splits(arrays, cfg, cfg.data_dir or cfg.dataset)
    x_train = split_arrays(arrays, "train")[0]
    c, h, w = x_train.shape[1:]
    check_model_fits(cfg, (c, h, w), len(x_train[: cfg.limit_train]))


def check_training(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False
) -> dict[str, Any] | None:
    """The output folder, the device, the run folder's files when resuming, the dataset and
    whether the model fits, before training starts; returns the checkpoint a resumed run
    continues from (read once, here), or None."""
    out = check_out_dir(out_dir)
    check_device(cfg.device)
    last = None
    if resume:  # DONE, config.json and checkpoints/last.pt read back and consistent
        if (out / "DONE").exists():
            checkpoint.read_done(out)
        if (out / "config.json").exists():  # else training refuses with "nothing to resume"
            saved, path = checkpoint.read_run_config(out), out / "checkpoints" / "last.pt"
            if path.exists():
                last = checkpoint.load_run_checkpoint(path)
                checkpoint.check_architecture(last["config"], saved, path)
    check_data(cfg)
    return last
