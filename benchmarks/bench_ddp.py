"""Distributed data-parallel training throughput: 1 vs N torchrun processes (gloo on CPU, NCCL on
GPUs), same global batch, one after the other in one run of this script.

Run: `python benchmarks/bench_ddp.py [--nproc 2] [--images 12800] [--device cpu]`. Each process
count trains the reference VAE for one epoch on the first `--images` training images; the
figure is the run's mean training images/s (DONE's `images_per_s_mean`, validation excluded).
On a 2-core CPU two processes share the same two cores (each gets one thread): expect no gain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def images_per_s(nproc: int, images: int, device: str, threads: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launch, f"--nproc_per_node={nproc}", "-m", "vaelab", "train", "--model", "vae"]
        cmd += ["--epochs", "1", "--batch-size", "128", "--limit-train", str(images)]
        cmd += ["--limit-val", "1000", "--device", device, "--out", str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads((out / "DONE").read_text())["images_per_s_mean"]


def run(nproc: int = 2, images: int = 12_800, device: str = "cpu") -> None:
    cores = os.cpu_count() or 1
    one = images_per_s(1, images, device, cores)
    per = max(1, cores // nproc)
    many = images_per_s(nproc, images, device, per)
    print(f"\n## DDP training, global batch 128, {images} images ({device})")
    print(f"1 process × {cores} threads: {one:8.0f} img/s")
    print(f"{nproc} processes × {per} threads: {many:8.0f} img/s  ({many / one:.2f}x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--images", type=int, default=12_800)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    run(a.nproc, a.images, a.device)
