"""The default study's wall time in course-recipe epochs, with its quality bars, in one run.

One epoch of the course recipe (the reference β-VAE, β = 1, all 50,000 training images, the
`course` preset's batch and learning rate) is timed first; then `vaelab study --preset default`
runs as a whole process (start-up included: what a user waits for) on the same machine right
after. The ratio wall / epoch is what issue 21 bounds (≤ 20), and it does not depend on how fast
the machine is. The quality bars are read from the study.json the run wrote:

- AE test MSE per pixel ≤ 0.0035;
- tuned VAE sample class entropy ≥ 2.2 nats (ln 10 = 2.303: all ten digits);
- β = 0 test KL > 100 nats; β = 10 no active unit;
- the tuned sample FD, printed beside the stage times (its bar, ≤ 1.15× the course preset's,
  needs a course study: `vaelab study --preset course`).

Run: `python benchmarks/bench_study_time.py [--keep DIR]` (about 10 min on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_recipe import history, recipe
from common import timed_process
from vaelab.evaluate import keys
from vaelab.study.schema import load_study

MAX_EPOCHS = 20


def quality(study_dir: Path) -> list[tuple[str, float, bool]]:
    """(bar, value, held) for each quality bar the default study must keep."""
    s = load_study(study_dir / "study.json")
    ev = {name: run.eval for name, run in s.runs.items()}
    tuned = ev[s.tuned]
    return [
        (
            "AE test MSE per pixel ≤ 0.0035",
            ev["ae"][keys.TEST_MSE],
            ev["ae"][keys.TEST_MSE] <= 0.0035,
        ),
        (
            "tuned sample class entropy ≥ 2.2 nats",
            tuned[keys.SAMPLES_CLASS_ENTROPY],
            tuned[keys.SAMPLES_CLASS_ENTROPY] >= 2.2,
        ),
        (
            "β = 0 test KL > 100 nats",
            ev["vae_beta0"][keys.TEST_KL],
            ev["vae_beta0"][keys.TEST_KL] > 100,
        ),
        (
            "β = 10 active units = 0",
            ev["vae_beta10"][keys.TEST_ACTIVE_UNITS],
            ev["vae_beta10"][keys.TEST_ACTIVE_UNITS] == 0,
        ),
    ]


def run(keep: Path | None = None) -> None:
    epoch_s = history(recipe("course", "vae", 1.0, 1), lambda r: r["val/loss"])[0][0]
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp) / "study"
        cmd = [sys.executable, "-m", "vaelab", "study", "--preset", "default", "--out", str(out)]
        _, wall = timed_process(cmd, "default study")
        s = load_study(out / "study.json")
        bars = quality(out)
        fd = s.runs[s.tuned].eval[keys.SAMPLES_FD]
    ratio = wall / epoch_s
    print("\n## The default study in course-recipe epochs (same machine, same run)")
    print(f"one course-recipe epoch (β-VAE, 50,000 images): {epoch_s:7.1f} s (training loop)")
    print(f"`vaelab study --preset default` wall time:       {wall:7.1f} s")
    verdict = "within" if ratio <= MAX_EPOCHS else "OVER"
    print(f"ratio: {ratio:.1f} course epochs ({verdict} the ≤ {MAX_EPOCHS} goal)")
    print("stages: " + ", ".join(f"{k} {s.stage_time_s[k]:.0f} s" for k in s.stage_order))
    for bar, value, held in bars:
        print(f"  {'held' if held else 'MISSED':<6} {bar:<40} {value:.4g}")
    print(f"  tuned sample FD {fd:.3g} (bar: ≤ 1.15× a course study's)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="write the study here instead of a temporary folder")
    a = ap.parse_args()
    run(a.keep)
