"""The default study on a folder of 64×64 colour pictures: its wall time on this machine.

    python benchmarks/bench_colour_study.py [--n 20000] [--size 64] [--preset default]
                                           [--keep DIR] [--figure docs/img/colour_summary.png]

The folder is made here, deterministically, from the first `n` Fashion-MNIST training images
(Debian's dataset-fashion-mnist): each is resized to `size`×`size` (bilinear) and painted with
two seeded colours, a saturated foreground where the garment is and a dark background, then
saved as an RGB PNG in its class folder (`0`…`9`). Without train/ and test/ folders the study
makes its seeded 1-in-7 split, so the classes are known and every metric is measured: the
reference classifier is trained on the folder itself (cached by its data hash, and its training
is part of the study's time, as it would be for a user's first study on their folder).

`vaelab study --dataset folder` then runs as a whole process (start-up and the folder's import
included: what a user waits for). Printed: the wall time, each stage's, and the quality figures
of study.json; `--figure` copies the report's summary picture (for the README).
"""

from __future__ import annotations

import argparse
import colorsys
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from common import timed_process
from vaelab.data import sources
from vaelab.data.sources import decode_idx
from vaelab.evaluate import keys
from vaelab.study.schema import load_study


def paint(grey: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(28, 28) uint8 → (size, size, 3) uint8: resized, foreground and background coloured."""
    a = np.asarray(Image.fromarray(grey).resize((size, size), Image.BILINEAR), np.float32) / 255
    fg = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1), rng.uniform(0.8, 1)))
    bg = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.6), rng.uniform(0, 0.3)))
    rgb = a[..., None] * fg + (1 - a[..., None]) * bg
    return np.round(rgb * 255).astype(np.uint8)


def make_folder(root: Path, n: int, size: int, seed: int = 0) -> float:
    """Write the colour folder; seconds it took."""
    t0 = time.perf_counter()
    files = sources.from_directory(sources.FASHION_DEBIAN_DIR)
    x = decode_idx(files[sources.TRAIN_IMAGES])[:n]
    y = decode_idx(files[sources.TRAIN_LABELS])[:n]
    rng = np.random.default_rng(seed)
    for k in range(10):
        (root / str(k)).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        Image.fromarray(paint(img, size, rng)).save(root / str(label) / f"{i:05d}.png")
    return time.perf_counter() - t0


def report(out: Path, wall: float, n: int, size: int) -> None:
    s = load_study(out / "study.json")
    ev = {name: run.eval for name, run in s.runs.items()}
    tuned = ev[s.tuned]
    print(f"\n## the {s.config.preset} study on {n} colour pictures, {size}×{size} (folder)")
    print(f"`vaelab study` wall time: {wall:.0f} s ({wall / 60:.1f} min)")
    print("stages: " + ", ".join(f"{k} {s.stage_time_s[k]:.0f} s" for k in s.stage_order))
    print(f"reference classifier test accuracy: {s.classifier.test_accuracy}")
    print(f"chosen β = {s.search.chosen_beta:g}")
    print(f"AE test MSE per pixel (over C×H×W): {ev['ae'][keys.TEST_MSE]:.5f}")
    print(
        f"tuned VAE: sample FD {tuned[keys.SAMPLES_FD]:.1f}, class entropy "
        f"{tuned[keys.SAMPLES_CLASS_ENTROPY]:.3f} nats (ln 10 = 2.303); AE sample FD "
        f"{ev['ae'][keys.SAMPLES_FD]:.1f}"
    )
    print(
        f"β = 0 test KL {ev['vae_beta0'][keys.TEST_KL]:.1f} nats; β = 10 active units "
        f"{ev['vae_beta10'][keys.TEST_ACTIVE_UNITS]:.0f}"
    )


def run(
    n: int = 20_000,
    size: int = 64,
    preset: str = "default",
    keep: Path | None = None,
    figure: Path | None = None,
) -> float:
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-colour-") as tmp:
        pics = Path(tmp) / "pictures"
        made = make_folder(pics, n, size)
        print(f"made {n} {size}×{size} colour PNGs in {made:.0f} s")
        out = keep or Path(tmp) / "study"
        if keep is not None and keep.exists():
            shutil.rmtree(keep)  # a study folder that exists would be finished, not run
        cmd = [sys.executable, "-m", "vaelab", "study", "--preset", preset]
        cmd += ["--dataset", "folder", "--data-dir", str(pics), "--out", str(out)]
        # a cache of its own: the import is timed as a first study's, and leaves no copy behind
        home = os.environ.get("VAELAB_HOME")
        os.environ["VAELAB_HOME"] = str(Path(tmp) / "home")
        try:
            _, wall = timed_process(cmd, f"{preset} study on a colour folder")
        finally:
            if home is None:
                del os.environ["VAELAB_HOME"]
            else:
                os.environ["VAELAB_HOME"] = home
        report(out, wall, n, size)
        if figure is not None:
            shutil.copyfile(out / "figures" / "summary.png", figure)
            print(f"summary picture: {figure}")
    return wall


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=20_000, help="pictures in the folder")
    p.add_argument("--size", type=int, default=64, choices=[28, 32, 64])
    p.add_argument("--preset", default="default")
    p.add_argument("--keep", type=Path, default=None, help="study folder to keep (replaced)")
    p.add_argument("--figure", type=Path, default=None, help="copy the summary picture here")
    a = p.parse_args()
    run(a.n, a.size, a.preset, a.keep, a.figure)
