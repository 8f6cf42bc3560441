"""`make bench`: every benchmark in one run, so ratios are measured side by side."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_eval
import bench_folder
import bench_loader
import bench_recipe
import bench_step
import bench_train

if __name__ == "__main__":
    bench_loader.run()
    bench_train.run()
    bench_step.run()
    bench_recipe.run()
    bench_folder.run()
    bench_eval.run()
