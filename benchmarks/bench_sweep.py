"""Sweep throughput: an 8-trial β sweep with 1 vs 2 local workers, and 2 workers × 1 thread vs
1 worker × 2 threads, measured side by side in one run (same data, same sizes, fresh dirs).

    .venv/bin/python benchmarks/bench_sweep.py              # the issue's measurement
    .venv/bin/python benchmarks/bench_sweep.py --dry-run    # tiny: proves the script works

Each configuration is a real `vaelab sweep run` process on its own SQLite study, timed from
start to exit (process start-up and evaluation included: what a user waits for). A 1-trial
warm-up first trains and caches the reference classifier so no configuration pays for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sweep_helpers import to_toml  # noqa: E402  (the tests' TOML writer)

sys.path.insert(0, str(ROOT / "benchmarks"))
from common import timed_process  # noqa: E402


def sweep_config(limit_train: int, epochs: int, trials: int, name: str) -> str:
    data = tomllib.loads((ROOT / "examples" / "sweeps" / "smoke.toml").read_text())
    data["sweep"].update(name=name, trials=trials, seed=0)
    data["train"].update(limit_train=limit_train, limit_val=1000, epochs=epochs)
    return to_toml(data)


def timed_sweep(config: Path, out: Path, workers: int, threads: int) -> float:
    cmd = [sys.executable, "-m", "vaelab", "sweep", "run", "--config", str(config)]
    cmd += ["--out", str(out), "--workers", str(workers), "--threads", str(threads)]
    return timed_process(cmd, "bench_sweep")[1]


def run(limit_train: int = 10_000, epochs: int = 2, trials: int = 8) -> None:
    cores = len(os.sched_getaffinity(0))
    half = max(1, cores // 2)
    configs = {  # label -> (workers, torch threads per worker)
        "1w": (1, cores),
        "2w": (2, half),
        "1x2": (1, 2),
        "2x1": (2, 1),
    }
    walls: dict[tuple[int, int], float] = {}  # on 2 cores the pairs coincide: measured once
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmpdir = Path(tmp)
        warm = tmpdir / "warm.toml"
        warm.write_text(sweep_config(256, 1, 1, "warm"))
        timed_sweep(warm, tmpdir / "warm", 1, cores)
        for i, key in enumerate(dict.fromkeys(configs.values())):
            cfg = tmpdir / f"c{i}.toml"
            cfg.write_text(sweep_config(limit_train, epochs, trials, f"bench{i}"))
            walls[key] = timed_sweep(cfg, tmpdir / f"s{i}", *key)
            print(f"{key[0]} worker(s) x {key[1]} thread(s): {walls[key]:.1f} s", file=sys.stderr)
    print(
        f"\n## Sweep of {trials} β trials ({limit_train} images x {epochs} epochs each, "
        f"{cores} cores)"
    )
    print(f"{'configuration':<28} {'wall s':>8} {'trials/min':>11}")
    for (workers, threads), wall in walls.items():
        name = f"{workers} worker(s) x {threads} thread(s)"
        print(f"{name:<28} {wall:>8.1f} {60 * trials / wall:>11.2f}")

    def speedup(fast: str, slow: str) -> str:
        a, b = configs[fast], configs[slow]
        return f"{walls[b] / walls[a]:.2f}x" if a != b else "n/a (same configuration)"

    print(f"2 workers vs 1 worker (all {cores} cores either way): {speedup('2w', '1w')}")
    print(f"2 workers x 1 thread vs 1 worker x 2 threads: {speedup('2x1', '1x2')}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-train", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--dry-run", action="store_true", help="2 trials of 256 images, 1 epoch")
    a = ap.parse_args()
    if a.dry_run:
        run(limit_train=256, epochs=1, trials=2)
    else:
        run(a.limit_train, a.epochs, a.trials)
