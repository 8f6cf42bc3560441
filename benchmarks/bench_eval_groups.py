"""What each metric group of `vaelab evaluate` costs, and the new feature-space measures alone.

    python benchmarks/bench_eval_groups.py RUN_DIR [--n-samples 10000] [--limit 10000]
        [--classifier standard]

Times, on one trained run, a full evaluation (every group and the figures, IW-NLL K = 200 on
500 images as in the quick preset), each group alone without figures, and the β-selection
evaluation (reconstruction + samples, no figures); then precision/recall and the realism scale
on random 128-d features of the sizes a full evaluation uses. Single runs (an evaluation is
seconds to minutes), so compare on a quiet machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import timeit
from vaelab.evaluate import GROUPS, SELECTION_GROUPS, EvalConfig, evaluate_run
from vaelab.evaluate.features import precision_recall, real_nn_scale


def _evaluate(run_dir: Path, **kw: object) -> float:
    """Seconds for one evaluation of a copy of run_dir (the original's eval.json is kept)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / run_dir.name
        shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("figures", "eval*"))
        t0 = time.perf_counter()
        evaluate_run(copy, EvalConfig(**kw), log=lambda m: None)  # type: ignore[arg-type]
        return time.perf_counter() - t0


def run(run_dir: Path, n_samples: int, limit: int, classifier: str = "standard") -> None:
    common = dict(
        n_samples=n_samples, limit=limit, iw_samples=200, iw_limit=500, classifier=classifier
    )
    print(f"## evaluation of {run_dir} ({limit} images, {n_samples} samples)")
    print(f"{'what':<44} {'seconds':>8}")
    print(f"{'all groups + figures':<44} {_evaluate(run_dir, **common):>8.1f}")
    for group in GROUPS:
        s = _evaluate(run_dir, groups=[group], figures=False, **common)
        print(f"{group + ' alone (no figures)':<44} {s:>8.1f}")
    s = _evaluate(run_dir, groups=list(SELECTION_GROUPS), figures=False, **common)
    print(f"{'selection: reconstruction + samples':<44} {s:>8.1f}")
    rng = np.random.default_rng(0)
    real, fake = (np.abs(rng.standard_normal((n, 128))) for n in (limit, n_samples))
    print(f"{'precision/recall alone, random features':<44} ", end="")
    print(f"{timeit(lambda: precision_recall(real, fake), repeats=1, warmup=0):>8.1f}")
    print(f"{'realism scale alone, random features':<44} ", end="")
    print(f"{timeit(lambda: real_nn_scale(real), repeats=1, warmup=0):>8.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument("--limit", type=int, default=10_000)
    p.add_argument("--classifier", default="standard", help="smoke: only to try the script")
    a = p.parse_args()
    run(a.run_dir, a.n_samples, a.limit, a.classifier)
