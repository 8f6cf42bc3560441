"""`vaelab study worker`: join a β search on any machine and train its queued trials.

The worker reads the study's definition from the storage (no preset flags), trains each queued
trial into OUT/runs/beta_<β>_r<rung>/ and records it in the storage; it stops when the
coordinator marks the search finished, and waits while trials may still be queued."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import optuna

from vaelab.study.runner import Study
from vaelab.study.search_queue import join_search, work


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
        ran = work(queue, study.search_trial, study.say)
        study.say(f"β search '{queue.name}' is finished; {ran} trials ran here")
    return ran
