"""The evaluation's nearest-neighbour stage before and after one pass per distance matrix:

    python benchmarks/bench_eval.py [--n 10000] [--rounds 2]

Precision/recall of reconstructions, samples and the train floor against n real images, and
realism's scale: before, the real × real distances were computed twice (k-th and nearest
neighbour) and each precision/recall walked real × fake twice (once per direction); after, one
pass each (vaelab.evaluate.context, precision_recall). The results are checked equal.
Interleaved rounds in one process; each variant's time is its median round."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vaelab.evaluate.features import (
    CHUNK,
    _distance_chunks,
    kth_neighbour_distance,
    precision_recall,
)


def _within_any_ball(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """vaelab 0.2's one-direction ball test (a pass over queries × centres)."""
    r = torch.as_tensor(radii)[None, :]
    chunks = _distance_chunks(queries, centres, CHUNK)
    return np.concatenate([(d <= r).any(1).numpy() for _, d in chunks])


def _kth_before(x: np.ndarray, k: int) -> np.ndarray:
    """vaelab 0.2's k-th neighbour distance: one pass over x × x per k."""
    return np.concatenate(
        [d.kthvalue(k + 1, 1).values.numpy() for _, d in _distance_chunks(x, x, CHUNK)]
    )


def _before(real: np.ndarray, fakes: list[np.ndarray], k: int = 3) -> list[float]:
    radii = _kth_before(real, k)
    out = [float(np.median(_kth_before(real, 1)))]
    for fake in fakes:
        fake_radii = _kth_before(fake, k)
        out.append(float(_within_any_ball(fake, real, radii).mean()))
        out.append(float(_within_any_ball(real, fake, fake_radii).mean()))
    return out


def _after(real: np.ndarray, fakes: list[np.ndarray], k: int = 3) -> list[float]:
    neighbours = kth_neighbour_distance(real, (1, k))
    out = [float(np.median(neighbours[:, 0]))]
    for fake in fakes:
        out.extend(precision_recall(real, fake, k, real_radii=neighbours[:, 1]))
    return out


def _timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def run(n: int = 10_000, rounds: int = 2) -> None:
    rng = np.random.default_rng(0)
    real, *fakes = (np.abs(rng.normal(size=(n, 128))) for _ in range(4))  # ReLU-like features
    neighbours: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        t_before, a = _timed(_before, real, fakes)
        t_after, b = _timed(_after, real, fakes)
        assert a == b, (a, b)
        neighbours["before"].append(t_before)
        neighbours["after"].append(t_after)
    med = {name: statistics.median(t) for name, t in neighbours.items()}
    print(f"\n## evaluation neighbours: 3 precision/recall + realism scale, n = {n}")
    for name, s in med.items():
        print(f"{name:<10} {s:>7.2f} s {med['before'] / s:>6.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    run(a.n, a.rounds)
