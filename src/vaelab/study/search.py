"""The study's β-search stage: trials (β, rung) queued in an Optuna study
(vaelab.tune.beta_search), trained as study runs by the coordinator and any workers
(`run_worker`), decided by vaelab.tune.halving and recorded as the study's `SearchResult`."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from vaelab.config import SETTINGS, UNHASHED, StudyConfig, TrainConfig
from vaelab.fsutil import json_sha256
from vaelab.study.runs import RunBook, beta_name
from vaelab.study.schema import Evaluation, RunEntry, RungRecord, SearchResult, parse, to_json
from vaelab.train.preflight import threads_per_process
from vaelab.tune import halving
from vaelab.tune.beta_search import (
    RUN_ATTR,
    SEARCH_DB,
    BetaQueue,
    Point,
    evaluate_batch,
    join_search,
    open_search,
    work,
)
from vaelab.tune.halving import halving_rule_text, select_beta
from vaelab.tune.jobs import LocalWorkers, requeue_dead_local_trials, worker_tag
from vaelab.tune.storage import default_storage_url


def definition(cfg: StudyConfig, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(study name, every option that changes a trial's result: the trial schedules, the
    evaluation, the thresholds, dataset and seed); the name defaults to
    `<preset>-<8 hex digits of the definition>`, one study per definition in a storage."""
    parts = {k: v for k, v in cfg.to_dict().items() if k not in UNHASHED}
    return name or f"{cfg.preset}-{json_sha256(parts)[:8]}", parts


@dataclass
class SearchPlacement:
    """Where the β search's trials are queued and who trains them."""

    storage: str | None = None
    """Study storage URL (None: the embedded sqlite:///STUDY_DIR/search.db)."""
    name: str | None = None
    """Study name in the storage (None: `<preset>-<hash of the definition>`)."""
    workers: int = 1
    """Processes on this machine working on the search, the coordinator included."""
    threads: int | None = None
    """torch threads of each of them during the search (None: cores / workers, as `vaelab
    sweep --workers` shares them; one process: PyTorch's default)."""


class BetaSearch:
    """The β search of the study whose runs `book` keeps, its trials placed as `placement`
    says."""

    def __init__(self, book: RunBook, placement: SearchPlacement | None = None) -> None:
        self.book = book
        self.cfg = book.cfg
        self.placement = placement or SearchPlacement()
        self.local_workers: LocalWorkers | None = None

    def say(self, msg: str) -> None:
        self.book.say(msg)

    # ------------------------------------------------------------------ one trial
    def plan(self) -> list[halving.Rung]:
        c = self.cfg
        return halving.rungs(
            c.trial_epochs, c.trial_limit_train, c.halving_eta, c.tuned_epochs, c.halving_rungs
        )

    def _trial_run(self, beta: float, rung: int) -> tuple[str, TrainConfig, Evaluation]:
        """(run name, train config, evaluation kind) of β-search trial (β, rung)."""
        c = self.cfg
        if c.search == "grid":
            tcfg = c.run_config("vae", beta, c.trial_epochs, trial=True)
            return beta_name(beta), tcfg, c.trial_evaluation
        r = self.plan()[rung]
        limit_train = r.limit_train or c.train.limit_train
        tcfg = c.run_config("vae", beta, r.epochs, trial=True, limit_train=limit_train)
        return beta_name(beta, rung), tcfg, "selection"

    def trial_dir(self, beta: float, rung: int) -> Path:
        return self.book.root / "runs" / self._trial_run(beta, rung)[0]

    def search_trial(self, beta: float, rung: int, run_dir: Path) -> tuple[dict[str, Any], float]:
        """Train and evaluate one β-search trial in `run_dir`; returns its run entry (as JSON,
        for the study storage) and selection loss."""
        name, tcfg, evaluation = self._trial_run(beta, rung)
        entry = self.book.ensure_run(name, tcfg, "search", evaluation, run_dir)
        c = self.cfg
        loss = halving.selection_loss(entry.eval, c.min_recon_accuracy, c.min_class_entropy)
        return to_json(entry), loss

    def _accept(self, trial: FrozenTrial, recorded: bool) -> RunEntry:
        """Take a finished trial's run entry from the study storage into this study."""
        book = self.book
        entry = parse(
            RunEntry,
            trial.user_attrs[RUN_ATTR],
            f"trial {trial.number}'s run entry",
            "it was recorded by another vaelab version: pass --name NEW for a new β search",
        )
        entry.dir = book.rel_dir(entry.run_dir)
        if recorded:
            entry.reused = True
            book.say(
                f"  reusing {entry.name} ({entry.model}, β={entry.beta:g}, {entry.epochs} "
                "epochs; recorded in the study storage)"
            )
        elif trial.user_attrs.get("pid") != os.getpid() or entry.host != socket.gethostname():
            wall = trial.user_attrs.get("wall_time_s", 0.0)
            who = f"{entry.host} pid {trial.user_attrs.get('pid')}"
            book.say(f"  {entry.name} trained by {who} ({wall:.0f} s)")
        book.runs.pop(entry.name, None)  # batch order in study.json, whoever finished first
        book.runs[entry.name] = entry
        return entry

    # ------------------------------------------------------------------ the search
    def open_queue(self) -> BetaQueue:
        """The β search's study, refused if that name holds another definition: opened before
        the study folder is made, so a refused storage or study creates nothing."""
        url = self.placement.storage or default_storage_url(self.book.root, SEARCH_DB)
        settings = {k: getattr(self.cfg, k) for k in SETTINGS}
        return open_search(url, self.cfg, *definition(self.cfg, self.placement.name), settings)

    def start(self, queue: BetaQueue) -> None:
        """This host's dead trials of an earlier, killed run are queued again at once; local
        workers start now, so they are ready when the search is."""
        lost = requeue_dead_local_trials(queue)
        if lost:
            self.say(f"queued again the trials of a stopped run: {', '.join(map(str, lost))}")
        p, c = self.placement, self.cfg
        if p.workers > 1:  # in the study folder, the storage URL with its password
            threads = threads_per_process(p.workers, p.threads)
            url, where = queue.storage.url, (c.out, c.train.device, c.train.data_dir)
            specs = [WorkerArgs(url, queue.name, *where, threads, i) for i in range(1, p.workers)]
            self.local_workers = LocalWorkers(run_worker, specs, first=1)

    def run(self, queue: BetaQueue) -> SearchResult:
        """The β search (vaelab.tune.halving.run_search) with trials queued in `queue` and
        trained as study runs, here and in any workers."""
        names: dict[Point, str] = {}

        def evaluate(betas: list[float], rung: int) -> dict[float, float]:
            points = [(b, rung) for b in betas]
            recorded = queue.status(points)[0]
            complete = evaluate_batch(queue, points, self)
            entries = {b: self._accept(complete[b, rung], (b, rung) in recorded) for b in betas}
            names.update({(b, rung): e.name for b, e in entries.items()})
            c = self.cfg  # the trial's value, recomputed from the same metrics
            th = c.min_recon_accuracy, c.min_class_entropy
            return {b: halving.selection_loss(e.eval, *th) for b, e in entries.items()}

        self.say(f"  β-search trials: study '{queue.name}' in {queue.url}")
        return self.record(self._decide(queue, evaluate), names, queue.url, queue.name)

    def record(
        self, outcome: halving.SearchOutcome, names: dict[Point, str], url: str, name: str
    ) -> SearchResult:
        """The search as study.json records it. The choice, its eligible β and whether it fell
        back all come from the rung that decided (the last one trained; rung 0 in a grid
        search), so they describe one decision."""
        c, runs = self.cfg, self.book.runs
        decided = outcome.rungs[-1]
        at = {b: runs[names[b, decided.index]].eval for b in decided.losses}
        choice = select_beta(at, c.min_recon_accuracy, c.min_class_entropy)
        rung0 = {b: names[b, 0] for b in outcome.rungs[0].losses}
        halving_search = c.search == "halving"
        return SearchResult(
            method=c.search,
            trials=sorted(rung0),
            trial_runs={f"{b:g}": n for b, n in sorted(rung0.items())},
            log=outcome.log,
            rungs=[self._rung_record(r, names) for r in outcome.rungs],
            chosen_beta=outcome.chosen,
            eligible=choice.eligible,
            reason=self._halving_reason(decided, outcome.chosen)
            if halving_search
            else choice.reason,
            fallback=choice.fallback,
            best_decade=outcome.best_decade,
            rule=halving_rule_text(c) if halving_search else "",
            storage=url,
            study_name=name,
        )

    def _rung_record(self, r: halving.RungResult, names: dict[Point, str]) -> RungRecord:
        """One rung of the search as study.json records it."""
        c, n_train = self.cfg, self.book.n_train
        rung = self.plan()[r.index] if c.search == "halving" else None
        return RungRecord(
            rung=r.index,
            epochs=rung.epochs if rung is not None else c.trial_epochs,
            limit_train=min(n_train, rung.limit_train or n_train) if rung is not None else n_train,
            selection_loss={f"{b:g}": v for b, v in sorted(r.losses.items())},
            runs={f"{b:g}": names[b, r.index] for b in sorted(r.losses)},
            promoted=r.promoted,
        )

    def _decide(self, queue: BetaQueue, evaluate: halving.Evaluate) -> halving.SearchOutcome:
        """run_search (this process with cores / workers torch threads, unless --threads says
        otherwise), then the search is marked finished and the local workers stop."""
        c, before = self.cfg, torch.get_num_threads()
        try:
            threads = threads_per_process(self.placement.workers, self.placement.threads)
            torch.set_num_threads(threads or before)
            outcome = halving.run_search(
                c.decades,
                evaluate,
                eta=c.halving_eta,
                n_rungs=c.halving_rungs if c.search == "halving" else 1,
                max_extensions=c.max_extensions,
                refine=c.refine,
            )
            queue.mark_finished()  # workers anywhere stop when the queue is empty
        except BaseException:
            self.stop_workers()
            raise
        finally:
            torch.set_num_threads(before)
        bad = self.local_workers.join() if self.local_workers is not None else []
        if bad:
            codes = ", ".join(map(str, bad))
            self.say(f"  {len(bad)} local workers ended with exit codes {codes}; see logs/")
        return outcome

    def stop_workers(self) -> None:
        """Stop the local workers (the search was interrupted or failed)."""
        if self.local_workers is not None:
            self.local_workers.stop()

    def _halving_reason(self, last: halving.RungResult, chosen: float) -> str:
        loss = last.losses[chosen]
        what = (
            f"its sample Fréchet distance {loss:.2f} was the lowest among the eligible β"
            if loss < halving.INELIGIBLE_PENALTY
            else "no β met both thresholds there, so the lowest sample Fréchet distance "
            f"({loss - halving.INELIGIBLE_PENALTY:.2f}) decided"
        )
        rung = self.plan()[last.index]
        images = min(self.book.n_train, rung.limit_train or self.book.n_train)
        betas = ", ".join(f"{b:g}" for b in sorted(last.losses))
        return (
            f"β = {chosen:g} won the last search rung (rung {last.index}: {rung.epochs} epochs "
            f"on {images} images; β {betas}): {what}"
        )


# ---- workers -----------------------------------------------------------------------------------
@dataclass
class WorkerArgs:
    """`vaelab study worker`: join a β search on any machine and train its queued trials into
    OUT/runs/beta_<β>_r<rung>/; the study's definition comes from the storage, not from flags."""

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
    """Work on the β search until the coordinator marks it finished (waiting while trials may
    still be queued); returns how many trials ran here."""
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say more

    def build(stored: dict[str, Any]) -> StudyConfig:
        """The coordinator's definition and settings, with this machine's folders and device."""
        here = {"out": args.out, "device": args.device, "data_dir": args.data_dir}
        return StudyConfig.from_options(
            {**stored, **here},
            source="this β search's definition in its storage",
            fix="it was defined by another vaelab version: run the coordinator's version here",
        ).validate()

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
