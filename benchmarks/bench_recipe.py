"""Time to quality: the course recipe vs the default study's recipe, side by side in one process.

Same model (the reference conv AE / β-VAE), same data (all 50,000 training images), same machine:

- AE: training seconds until the validation MSE per pixel is ≤ 0.0035 (checked after each epoch);
- VAE β = 1: training seconds until the validation loss (SSE + KL per image) is ≤ what the course
  recipe reaches in 20 epochs (its best epoch);
- the default study's total training images vs the `course` preset's (from the presets' plans).

Seconds are the training loop's own (`train_time_s`, validation excluded), so both recipes are
timed the same way. Run: `python benchmarks/bench_recipe.py [--skip-vae]` (about 15 min on 2 cores
with the VAE part; the course VAE's 20 epochs dominate).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from vaelab.config import TrainConfig
from vaelab.study.presets import make_config
from vaelab.study.runner import pending
from vaelab.study.runs import RunBook
from vaelab.train.loop import train

PIXELS = 28 * 28


def recipe(preset: str, model: str, beta: float, epochs: int) -> TrainConfig:
    """The preset's training recipe for one run on all 50,000 training images, on the CPU."""
    return make_config(preset, device="cpu").run_config(model, beta, epochs)


def history(cfg: TrainConfig, metric, stop_at: float | None = None) -> list[tuple[float, float]]:
    """Train `cfg`; (cumulative training seconds, metric) after each epoch, stopping early once
    the metric is ≤ stop_at."""
    out: list[tuple[float, float]] = []

    def on_epoch(epoch: int, rec: dict[str, float]) -> bool:
        t = (out[-1][0] if out else 0.0) + rec["epoch_time_s"]
        out.append((t, metric(rec)))
        return stop_at is not None and out[-1][1] <= stop_at

    with tempfile.TemporaryDirectory() as d:
        train(cfg, Path(d) / "run", tensorboard=False, on_epoch_end=on_epoch)
    return out


def first_hit(hist: list[tuple[float, float]], target: float) -> tuple[float, float]:
    """(seconds, epoch) of the first epoch whose metric is ≤ target; (inf, inf) if none."""
    for epoch, (t, v) in enumerate(hist, 1):
        if v <= target:
            return t, epoch
    return float("inf"), float("inf")


def planned_images(preset: str) -> int:
    """Training images the preset's study plans (rung sizes as planned, before any reuse)."""
    book = RunBook(make_config(preset))
    book.n_train = 50_000
    return sum(epochs * n for _, epochs, n, _ in pending(book))


def run(skip_vae: bool = False, skip_ae: bool = False) -> None:
    default = make_config("default")
    mse = lambda r: r["val/recon"] / PIXELS  # noqa: E731 (AE: val/loss is the SSE per image)
    loss = lambda r: r["val/loss"]  # noqa: E731
    rows = []
    if not skip_ae:
        course_ae = history(recipe("course", "ae", 0.0, 12), mse, stop_at=0.0035)
        new_ae = history(recipe("default", "ae", 0.0, default.ae_epochs), mse)
        rows.append(("AE to val MSE ≤ 0.0035", 0.0035, course_ae, new_ae))
    if not skip_vae:
        course = history(recipe("course", "vae", 1.0, 20), loss)
        target = min(v for _, v in course)
        new = history(recipe("default", "vae", 1.0, default.tuned_epochs), loss)
        rows.append((f"VAE β=1 to val loss ≤ {target:.2f} (course best)", target, course, new))
    print("\n## Time to quality: course recipe vs default recipe (training seconds)")
    for name, target, a, b in rows:
        (ta, ea), (tb, eb) = first_hit(a, target), first_hit(b, target)
        best_b = min(v for _, v in b)
        ratio = ta / tb if tb < float("inf") else float("nan")
        print(
            f"{name:<44} course {ta:7.1f} s ({ea} ep)  default {tb:7.1f} s ({eb} ep; "
            f"best {best_b:.4g})  {ratio:5.2f}x"
        )
    c, d = planned_images("course"), planned_images("default")
    print(f"study training images: course {c:,}  default {d:,}  ({c / d:.1f}x fewer)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-vae", action="store_true", help="only the AE comparison (~4 min)")
    ap.add_argument("--skip-ae", action="store_true", help="only the VAE comparison (~10 min)")
    a = ap.parse_args()
    run(a.skip_vae, a.skip_ae)
