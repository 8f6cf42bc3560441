"""`vaelab study worker`: join a β search on any machine and train its queued trials.

The worker reads the study's definition from the storage (no preset flags), trains each queued
trial into OUT/runs/beta_<β>_r<rung>/ and records it in the storage; it stops when the
coordinator marks the search finished, and waits while trials may still be queued."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import optuna

from vaelab.study.presets import StudyConfig
from vaelab.study.runs import RunBook
from vaelab.study.search import BetaSearch, SearchPlacement, worker_config
from vaelab.tune.beta_search import BetaQueue, join_search, work
from vaelab.tune.jobs import worker_tag


@dataclass
class WorkerArgs:
    storage: str
    """The study storage URL (with its password: workers connect with it)."""
    name: str | None
    """The study's name (None: the storage's only study)."""
    out: str
    """Directory of this worker's runs (runs/<name>/) and log (logs/)."""
    device: str = "auto"
    data_dir: str | None = None
    threads: int | None = None
    """torch threads (None: PyTorch's default, all cores)."""
    index: int = 0


def run_worker(args: WorkerArgs) -> int:
    """Work on the β search until it is finished; returns how many trials ran here."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say more
    build = partial(worker_config, out=args.out, device=args.device, data_dir=args.data_dir)
    queue, cfg = join_search(args.storage, args.name, build)
    book = RunBook(cfg)
    tag = worker_tag()
    book.log.prefix = f"[worker {args.index} {tag}] "
    with book.log.to_file(Path(args.out) / "logs" / f"worker-{tag}.log"):
        threads = torch.get_num_threads()
        book.say(f"joined β search '{queue.name}' in {queue.url} (torch threads {threads})")
        ran = work(queue, BetaSearch(book))
        book.say(f"β search '{queue.name}' is finished; {ran} trials ran here")
    return ran


def local_worker_args(
    queue: BetaQueue, cfg: StudyConfig, placement: SearchPlacement
) -> list[WorkerArgs]:
    """`vaelab study --workers K`: K - 1 workers beside the coordinator, in the study folder,
    with cores / K torch threads each (as `vaelab sweep --workers` shares them)."""
    url, threads = queue.storage.url, placement.threads_each()  # with its password
    return [
        WorkerArgs(url, queue.name, cfg.out, cfg.train.device, cfg.train.data_dir, threads, i)
        for i in range(1, placement.workers)
    ]
