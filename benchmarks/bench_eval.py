"""The evaluation's nearest-neighbour stage before and after one pass per distance matrix:

    python benchmarks/bench_eval.py [--n 10000] [--rounds 2]

Precision/recall of reconstructions, samples and the train floor against n real images, and
realism's scale: before, the real × real distances were computed twice (k-th and nearest
neighbour) and each precision/recall walked real × fake twice (once per direction); after, one
pass each (vaelab.evaluate.context, precision_recall). The results are checked equal.
Interleaved rounds in one process; each variant's time is its median round.

    python benchmarks/bench_eval.py --memo [--run-dir RUN_DIR] [--rounds 2]

The default study's evaluations of one run (the `full` one with figures, and the β-selection one)
with the memo of the model-independent parts (vaelab.evaluate.memo) off, then on and already
filled by an earlier evaluation (as for every evaluation of a study but its first), interleaved;
the metrics are checked equal bit for bit. Then the reference classifier's features of the
evaluated images with max_pool2d and with the strided-maxima pooling (vaelab.evaluate.classifier
.max_pool2), checked bitwise equal. Without RUN_DIR a VAE is trained for one epoch on 5,000
images first (its quality does not change what the evaluation computes)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vaelab.config import TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.evaluate import classifier as clf
from vaelab.evaluate import evaluate_run, memo
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


def _evaluation(run_dir: Path, kind: str, cached: bool) -> tuple[float, dict[str, float]]:
    """(seconds, metrics) of the default study's `kind` evaluation of run_dir, memo on or off."""
    from vaelab.study.presets import make_config

    ecfg = make_config("default").eval_config(kind)  # type: ignore[arg-type]
    with memo.disabled() if not cached else contextlib.nullcontext():
        t0 = time.perf_counter()
        m = evaluate_run(run_dir, ecfg, log=lambda _: None)
        return time.perf_counter() - t0, m


def run_memo(run_dir: Path | None = None, rounds: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if run_dir is None:
            from vaelab.train.loop import train

            run_dir = Path(tmp) / "vae"
            train(TrainConfig(model="vae", epochs=1, limit_train=5000, limit_val=500), run_dir)
        else:  # a copy: the run's own eval.json and figures stay as they are
            shutil.copytree(run_dir, Path(tmp) / "run", ignore=shutil.ignore_patterns("eval*"))
            run_dir = Path(tmp) / "run"
        timing = ("eval/time_s", "test/iw_time_s")
        print(f"\n## evaluation memo: the default study's evaluations of {run_dir.name}")
        print(f"{'evaluation':<12} {'memo off':>9} {'memo on':>9} {'ratio':>7}")
        for kind in ("full", "selection"):
            memo.clear()
            _evaluation(run_dir, kind, cached=True)  # fills the memo, as a study's first does
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(rounds):
                results = {}
                for cached in (False, True):
                    t, m = _evaluation(run_dir, kind, cached)
                    times[cached].append(t)
                    results[cached] = {k: v for k, v in m.items() if k not in timing}
                assert results[False] == results[True], "memoised metrics differ"
            off, on = (statistics.median(times[c]) for c in (False, True))
            print(f"{kind:<12} {off:>8.1f}s {on:>8.1f}s {off / on:>6.2f}x")
        _bench_pool(rounds)


def _bench_pool(rounds: int) -> None:
    model, _ = clf.reference_classifier("mnist")
    x8 = split_arrays(load_arrays("mnist"), "test")[0]
    images = torch.from_numpy(x8).float() / 255.0
    fast = clf.max_pool2
    variants = {"max_pool2d": lambda t: F.max_pool2d(t, 2), "strided maxima": fast}
    times: dict[str, list[float]] = {name: [] for name in variants}
    out = {}
    for _ in range(rounds):
        for name, pool in variants.items():
            clf.max_pool2 = pool  # type: ignore[assignment]
            try:
                t0 = time.perf_counter()
                out[name] = clf.classify(model, images)
                times[name].append(time.perf_counter() - t0)
            finally:
                clf.max_pool2 = fast
        a, b = out.values()
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n## classifier features of {len(images)} test images (bitwise equal)")
    for name, s in med.items():
        print(f"{name:<16} {s:>7.2f} s {med['max_pool2d'] / s:>6.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--memo", action="store_true", help="the evaluation memo and pooling instead")
    ap.add_argument("--run-dir", type=Path, help="with --memo: a trained run to evaluate")
    a = ap.parse_args()
    if a.memo:
        run_memo(a.run_dir, a.rounds)
    else:
        run(a.n, a.rounds)
