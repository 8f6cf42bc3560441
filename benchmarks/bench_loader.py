"""Images/s of one epoch of MNIST train: vaelab's tensor-resident loader vs the course notebook's
per-sample Dataset + DataLoader (ToTensor-like conversion, batch 64), side by side in one run."""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common import print_table, timeit
from vaelab.data import TensorLoader, load_split


class NotebookMNIST(Dataset):
    """What the course notebook iterates: torchvision's MNIST.__getitem__ (a PIL image per
    sample) followed by transforms.ToTensor(), re-stated here because torchvision is not used."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        pic = Image.fromarray(self.x[i, 0], mode="L")
        t = torch.from_numpy(np.array(pic, np.uint8, copy=True))
        t = t.view(pic.size[1], pic.size[0], 1).permute(2, 0, 1).contiguous()
        return t.float().div(255), int(self.y[i])


def run(batch_size: int = 64, limit: int | None = None, repeats: int = 3) -> list:
    x, y = load_split("mnist", "train")
    if limit:
        x, y = x[:limit], y[:limit]
    n = len(x)
    tensor_loader = TensorLoader(x, y, batch_size, shuffle=True, seed=0)

    def epoch_tensor() -> None:
        for xb, _ in tensor_loader:
            xb.sum()  # touch the batch as a training step would

    def epoch_dataloader(workers: int) -> None:
        dl = DataLoader(
            NotebookMNIST(x, y),
            batch_size=batch_size,
            shuffle=True,
            num_workers=workers,
            generator=torch.Generator().manual_seed(0),
        )
        for xb, _ in dl:
            xb.sum()

    rows = [("tensor-resident TensorLoader", n / timeit(epoch_tensor, repeats), "img/s")]
    for workers in (0, 2):
        t = timeit(lambda w=workers: epoch_dataloader(w), repeats=max(1, repeats - 2))
        rows.append((f"Dataset + DataLoader(num_workers={workers})", n / t, "img/s"))
    print_table(
        f"data loading, one epoch of {n} images, batch {batch_size}",
        rows,
        baseline="Dataset + DataLoader(num_workers=0)",
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    run(args.batch_size, args.limit)
