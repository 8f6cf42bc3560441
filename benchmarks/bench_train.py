"""Training throughput of the reference conv VAE (batch 64), side by side in one process:

- vaelab's step on tensor-resident batches vs the course notebook's pipeline (per-sample
  Dataset + DataLoader feeding the same model and step), as a ratio;
- achieved training FLOP/s (counted with torch.utils.flop_counter) as a fraction of this
  machine's measured fp32 matmul FLOP/s;
- the levers: Adam foreach on/off, 1 vs all threads, bf16 autocast (only timed briefly on CPUs
  without native bf16); channels_last and torch.compile are bench_step.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from bench_loader import NotebookMNIST
from common import print_table
from vaelab.config import TrainConfig
from vaelab.data import TensorLoader, load_split
from vaelab.models import build_model
from vaelab.train.loop import train_step


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def step_flops(cfg: TrainConfig, batch: int) -> float:
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters())
    x = torch.rand(batch, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        train_step(model, opt, x, cfg.beta, cfg, contextlib.nullcontext())
    return float(counter.get_total_flops())


def time_steps(
    batches,
    cfg: TrainConfig,
    steps: int,
    *,
    foreach: bool | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> float:
    """Images/s of `steps` training steps (after 5 warm-up steps) drawing from `batches`."""
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=foreach)
    ctx = autocast or contextlib.nullcontext()
    it = iter(batches)
    n = 0
    for i in range(steps + 5):
        if i == 5:
            t0, n = time.perf_counter(), 0
        try:
            x = next(it)[0]
        except StopIteration:
            it = iter(batches)
            x = next(it)[0]
        train_step(model, opt, x, cfg.beta, cfg, ctx)
        n += len(x)
    return n / (time.perf_counter() - t0)


def run(steps: int = 300, batch: int = 64) -> None:
    x, y = load_split("mnist", "train")
    cfg = TrainConfig(model="vae", beta=1.0, batch_size=batch)
    loader = TensorLoader(x, y, batch, shuffle=True, seed=0)
    notebook = DataLoader(
        NotebookMNIST(x, y),
        batch_size=batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    rows = [
        ("vaelab: tensor-resident batches", time_steps(loader, cfg, steps), "img/s"),
        ("notebook: Dataset + DataLoader", time_steps(notebook, cfg, steps), "img/s"),
    ]
    print_table(
        f"VAE training, batch {batch}, {steps} steps, {torch.get_num_threads()} threads",
        rows,
        baseline="notebook: Dataset + DataLoader",
    )

    levers = [
        ("baseline (fp32, default Adam)", rows[0][1], "img/s"),
        ("Adam foreach=True", time_steps(loader, cfg, steps, foreach=True), "img/s"),
        ("Adam foreach=False", time_steps(loader, cfg, steps, foreach=False), "img/s"),
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    levers.append(("1 thread", time_steps(loader, cfg, steps), "img/s"))
    torch.set_num_threads(threads)
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    levers.append(("bf16 autocast (20 steps)", time_steps(loader, cfg, 20, autocast=bf16), "img/s"))
    print_table(
        "levers (same model, tensor-resident batches)",
        levers,
        baseline="baseline (fp32, default Adam)",
    )

    peak = matmul_flops()
    per_image = step_flops(cfg, batch) / batch
    achieved = rows[0][1] * per_image
    print(f"\ntraining step: {per_image / 1e6:.1f} MFLOP per image (forward + backward, counted)")
    print(
        f"achieved {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of measured fp32 matmul "
        f"{peak / 1e9:.1f} GFLOP/s (2048² matmul, {threads} threads)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    run(args.steps, args.batch_size)
