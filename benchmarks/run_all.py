"""`make bench`: every benchmark in one run, so ratios are measured side by side.

The default study on a folder of 20,000 colour pictures (64×64) runs first: it is the longest
(about 35 min on 2 cores; `make bench` takes about an hour) and the one most likely to stop on a
new machine; its study folder stays in build/bench/colour_study. Then the loader, the training
step's options, time to quality, the 60,000-PNG import and the evaluation's stages.
`bench_study_time.py` (the default study in course-recipe epochs) runs on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_colour_study
import bench_eval
import bench_folder
import bench_loader
import bench_recipe
import bench_step
import bench_train

COLOUR_STUDY = Path("build/bench/colour_study")
"""Kept, to read its report; replaced by the next `make bench`."""

if __name__ == "__main__":
    bench_colour_study.run(keep=COLOUR_STUDY)
    bench_loader.run()
    bench_train.run()
    bench_step.run()
    bench_recipe.run()
    bench_folder.run()
    bench_eval.run()
