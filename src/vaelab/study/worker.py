"""`vaelab study worker`: join a β search on any machine and train its queued trials.

The worker reads the study's definition from the storage (no preset flags), trains each queued
trial into OUT/runs/beta_<β>_r<rung>/ and records it in the storage; it stops when the
coordinator marks the search finished, and waits while trials may still be queued."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import optuna

from vaelab.study.runs import Study
from vaelab.study.search import BetaSearch, SearchPlacement
from vaelab.tune.search_queue import SearchQueue, join_search, work
from vaelab.tune.sweep import start_workers


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
    queue = join_search(args.storage, args.name, args.out, args.device, args.data_dir)
    study = Study(queue.cfg)
    tag = f"{socket.gethostname()}-{os.getpid()}"
    study.prefix = f"[worker {args.index} {tag}] "
    with study.logging_to(Path(args.out) / "logs" / f"worker-{tag}.log"):
        study.say(
            f"joined β search '{queue.name}' in {queue.url} "
            f"(torch threads {torch.get_num_threads()})"
        )
        ran = work(queue, BetaSearch(study), study.say)
        study.say(f"β search '{queue.name}' is finished; {ran} trials ran here")
    return ran


class LocalWorkers:
    """`vaelab study --workers K`: K - 1 worker processes beside the coordinator, in the study
    directory, with cores / K torch threads each (as `vaelab sweep --workers` shares them)."""

    def __init__(self, procs: list[BaseProcess]) -> None:
        self.procs = procs

    @classmethod
    def start(cls, queue: SearchQueue, placement: SearchPlacement) -> LocalWorkers:
        k, c, threads = placement.workers, queue.cfg, placement.threads_each()
        url = queue.storage.url  # with its password: the workers connect with it
        specs = [
            WorkerArgs(url, queue.name, c.out, c.device, c.data_dir, threads, i)
            for i in range(1, k)
        ]
        return cls(start_workers(run_worker, specs))

    def join(self) -> list[int]:
        """Wait for them (they stop once the search is marked finished); the exit codes of
        those that failed."""
        for p in self.procs:
            p.join()
        return [p.exitcode or 0 for p in self.procs if p.exitcode != 0]

    def stop(self) -> None:
        """The search stopped (interrupted or failed). After Ctrl-C they saw the same signal
        and are queueing their trials again: give them time; then SIGTERM, which does the same
        (a training run checkpoints, its trial is queued again)."""
        for p in self.procs:
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
                p.join()
