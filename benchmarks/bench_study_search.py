"""The study's β search with 1 vs 2 local processes (`vaelab study --workers K`), measured side by
side in one run: the configurations alternate round by round (1, 2, 1, 2, ...), each a real
`vaelab study` process into a fresh directory, so a drift in the machine's speed hits both.

    .venv/bin/python benchmarks/bench_study_search.py                # smoke preset, 3 rounds
    .venv/bin/python benchmarks/bench_study_search.py --rounds 1     # quicker
    .venv/bin/python benchmarks/bench_study_search.py --search-only --preset default --rounds 1

`--search-only` runs just the β search of the preset on the whole train split (the stage the
workers share, at its real trial sizes), through the Python API, in a fresh process each.

Reported per configuration: the search stage's wall time (study.json `stage_time_s.search`:
the part the workers share) and the whole command's; then the per-round ratios 1-worker/2-worker
and their median. A first study, not counted, trains and caches the reference classifier so no
configuration pays for it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import timed_process


def timed_study(out: Path, workers: int, preset: str) -> tuple[float, float, float]:
    """(search-stage seconds, whole-command seconds, chosen β) of one fresh study."""
    cmd = [sys.executable, "-m", "vaelab", "study", "--preset", preset, "--out", str(out)]
    _, wall = timed_process([*cmd, "--workers", str(workers)], "bench_study_search")
    study = json.loads((out / "study.json").read_text())
    return study["stage_time_s"]["search"], wall, study["search"]["chosen_beta"]


# The β search alone, as `vaelab study` runs it after its first stages (argv: out, workers, preset).
SEARCH_ONLY = """
import json, sys, time
from vaelab.study import make_config
from vaelab.study.runs import RunBook
from vaelab.study.schema import to_json
from vaelab.study.search import BetaSearch, SearchPlacement
out, workers, preset = sys.argv[1], int(sys.argv[2]), sys.argv[3]
book = RunBook(make_config(preset, out=out))
book.n_train = 50_000
search = BetaSearch(book, SearchPlacement(workers=workers))
t0 = time.perf_counter()
queue = search.open_queue()
search.start(queue)
result = to_json(search.run(queue))
stage = {"search": time.perf_counter() - t0}
print(json.dumps({"stage_time_s": stage, "search": result}))
"""


def timed_search(out: Path, workers: int, preset: str) -> tuple[float, float, float]:
    """(search seconds, whole-process seconds, chosen β) of the preset's β search alone."""
    cmd = [sys.executable, "-c", SEARCH_ONLY, str(out), str(workers), preset]
    stdout, wall = timed_process(cmd, "bench_study_search")
    study = json.loads(stdout.strip().splitlines()[-1])
    return study["stage_time_s"]["search"], wall, study["search"]["chosen_beta"]


def run(rounds: int, preset: str, search_only: bool = False) -> None:
    cores = len(os.sched_getaffinity(0))
    what = "β search only" if search_only else "whole study"
    print(f"{cores} cores; preset {preset}, {what}; {rounds} rounds of 1 then 2 workers")
    timed = timed_search if search_only else timed_study
    results: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        if search_only:  # the reference classifier, trained and cached once
            from vaelab.evaluate import classifier as clf
            from vaelab.study import make_config

            clf.reference_classifier("mnist", None, variant=make_config(preset).eval.classifier)
        else:
            timed_study(Path(tmp) / "warm-up", 1, preset)
        for i in range(rounds):
            for k in (1, 2):
                results[k].append(timed(Path(tmp) / f"r{i}-w{k}", k, preset))
                search, wall, beta = results[k][-1]
                print(
                    f"round {i + 1}, {k} worker(s): search {search:.1f} s, "
                    f"whole {wall:.1f} s, β {beta:g}"
                )
    for what, j in (("search stage", 0), ("whole command", 1)):
        ratios = [a[j] / b[j] for a, b in zip(results[1], results[2], strict=True)]
        one = statistics.median(r[j] for r in results[1])
        two = statistics.median(r[j] for r in results[2])
        print(
            f"{what}: median 1 worker {one:.1f} s, 2 workers {two:.1f} s; per-round ratio "
            f"1/2 {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}×)"
        )
    betas = {r[2] for rs in results.values() for r in rs}
    print(f"chosen β in every study: {', '.join(f'{b:g}' for b in sorted(betas))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--search-only", action="store_true")
    args = ap.parse_args()
    run(args.rounds, args.preset, args.search_only)


if __name__ == "__main__":
    main()
