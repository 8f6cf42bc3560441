"""Batches straight from one device-resident uint8 tensor.

A per-sample `Dataset` + `DataLoader` pays Python overhead for every image; here a split lives on
the device as one uint8 tensor (MNIST train: 39 MB) and a batch is one index gather. The order is
a permutation seeded by (seed, epoch), so a resume replays an epoch from its number alone, and DDP
ranks take disjoint slices of the same permutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

Binarize = Literal["none", "static", "dynamic"]


def _epoch_seed(seed: int, epoch: int, salt: int = 0) -> int:
    # Distinct, reproducible streams per (seed, epoch, purpose); stays within int64.
    return (seed * 1_000_003 + epoch * 7_919 + salt * 104_729) % (2**62)


class TensorLoader:
    """Iterate over `(x, y)` batches; x is float32 (B, C, H, W) in [0, 1] on `device`.

    `images` are uint8 (N, C, H, W) with labels (N,); `batch_size` counts per rank under DDP, and
    `rank`/`world_size` pick this process's slice of each epoch's permutation. `binarize`: `none`
    (x/255), `static` (one seeded Bernoulli draw) or `dynamic` (a fresh draw per pixel per epoch).
    The final short batch is dropped with `drop_last`, or when it holds fewer images than
    `min_last_batch` (BatchNorm passes 2: one image has no batch statistics; it is seen in the
    next epoch's order instead)."""

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        binarize: Binarize = "none",
        drop_last: bool = False,
        min_last_batch: int = 1,
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if min_last_batch < 1:
            raise ValueError("min_last_batch must be >= 1")
        if binarize not in ("none", "static", "dynamic"):
            raise ValueError(f"binarize must be none, static or dynamic, got {binarize!r}")
        self.device = torch.device(device)
        self.images = torch.as_tensor(images, dtype=torch.uint8).to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError("images must be (N, C, H, W) with one label per image")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.binarize = binarize
        self.drop_last = drop_last
        self.min_last_batch = min_last_batch
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        if binarize == "static":
            g = torch.Generator(device="cpu").manual_seed(_epoch_seed(seed, 0, salt=1))
            probs = self.images.cpu().float().div_(255.0)
            binary = torch.bernoulli(probs, generator=g).to(torch.uint8)
            self.images = binary.mul_(255).to(self.device)

    def _per_rank(self) -> tuple[int, int]:
        """(this rank's share of the indices, how many of them are iterated: the rest is a
        dropped last batch)."""
        n = -(-len(self.images) // self.world_size)
        rest = n % self.batch_size
        return n, n - rest if rest and (self.drop_last or rest < self.min_last_batch) else n

    def __len__(self) -> int:
        return -(-self._per_rank()[1] // self.batch_size)  # batches, rounded up

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's permutation (and binarisation draw) the next iteration uses."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)  # this rank's indices, generated on CPU so every device agrees
        per_rank, stop = self._per_rank()
        if self.shuffle:
            g = torch.Generator(device="cpu").manual_seed(_epoch_seed(self.seed, self.epoch))
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        if self.world_size > 1:  # pad by wrapping so every rank gets the same count
            total = per_rank * self.world_size
            perm = torch.cat([perm, perm[: total - n]])[self.rank :: self.world_size]
        perm = perm.to(self.device)
        gen = None
        if self.binarize == "dynamic":
            gen = torch.Generator(device=self.device)
            gen.manual_seed(_epoch_seed(self.seed, self.epoch, salt=2))
        for start in range(0, stop, self.batch_size):
            idx = perm[start : start + self.batch_size]
            x = self.images[idx].float().div_(255.0)  # (B, C, H, W) in [0, 1]
            if gen is not None:
                x = torch.bernoulli(x, generator=gen)
            yield x, self.labels[idx]


class ImageDataset(Dataset):
    """A plain per-sample view, for people who bring their own loops: (x float (C,H,W), y)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.images[i].astype(np.float32) / 255.0), int(self.labels[i])
