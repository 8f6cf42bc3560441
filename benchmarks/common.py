"""Helpers shared by the benchmarks: timing with Python's own timers, medians, a results table."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def timeit(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall seconds of `fn` over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(title: str, rows: list[tuple[str, float, str]], baseline: str) -> None:
    """Rows of (name, rate, unit); ratios are relative to the row named `baseline`."""
    base = dict((r[0], r[1]) for r in rows)[baseline]
    print(f"\n## {title}")
    print(f"{'pipeline':<44} {'rate':>14}   ratio vs {baseline}")
    for name, rate, unit in rows:
        print(f"{name:<44} {rate:>10.0f} {unit:<4} {rate / base:>8.2f}x")


def timed_process(cmd: list[str], who: str) -> tuple[str, float]:
    """Run `cmd` as a whole process (start-up included: what a user waits for) with the
    machine's cores left to it (no inherited OMP/MKL thread limits); (stdout, wall seconds).
    A failure ends the benchmark with the command's last error lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{who}: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return r.stdout, wall
