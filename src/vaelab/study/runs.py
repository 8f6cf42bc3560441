"""The study's runs: a `RunBook` trains (or reuses, or resumes) and evaluates runs in STUDY_DIR,
keeps their study.json entries, and holds what every stage shares: the log, the time per stage
and the speed estimates behind "minutes of work left"."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

from vaelab.config import TrainConfig
from vaelab.errors import ConfigError
from vaelab.evaluate import evaluate_run, keys
from vaelab.fsutil import atomic_write_json
from vaelab.study.presets import StudyConfig
from vaelab.study.schema import Evaluation, RunEntry, Stage
from vaelab.train.loop import train
from vaelab.tune.jobs import Log

Pending = list[tuple[str, int, int, str]]
"""Runs still to train: (name, epochs, images per epoch, evaluation kind)."""


def beta_name(beta: float, rung: int | None = None) -> str:
    """Run name of a β trial: `beta_<β>` (grid search), `beta_<β>_r<rung>` (halving)."""
    return f"beta_{beta:g}" if rung is None else f"beta_{beta:g}_r{rung}"


class RunBook:
    """The runs of the study in `cfg.out`, and what the stages record about them."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.out)
        self.runs: dict[str, RunEntry] = {}
        self.stage_time: dict[str, float] = {}
        self.ips = 2000.0  # training images/s, updated from finished runs
        self.eval_s = {"full": 60.0, "selection": 5.0}  # seconds per evaluation, likewise
        self.log = Log()  # a worker's log has its tag as prefix
        self.n_train = 0

    def say(self, msg: str) -> None:
        self.log.say(msg)

    def rel_dir(self, run_dir: str | Path) -> str:
        """A run's `dir` in study.json: relative to the study directory when inside it."""
        path = Path(run_dir).resolve()
        with contextlib.suppress(ValueError):
            return path.relative_to(self.root.resolve()).as_posix()
        return str(path)

    def remaining_s(self, pending: Pending) -> float:
        """Estimated seconds for the pending runs not done yet."""
        todo = [p for p in pending if p[0] not in self.runs]
        train_s = sum(e * n / self.ips for _, e, n, _ in todo)
        return train_s + sum(self.eval_s[k] for *_, k in todo)

    def ensure_run(
        self,
        name: str,
        tcfg: TrainConfig,
        stage: Stage,
        evaluation: Evaluation = "full",
        run_dir: Path | None = None,
    ) -> RunEntry:
        """Train (or reuse, or resume) and evaluate one run in `run_dir` (default
        STUDY_DIR/runs/<name>); returns its entry. A run whose config equals one done here
        already is not trained twice: the earlier run stands for both."""
        for other in self.runs.values():
            if (
                other.config == tcfg.to_dict()
                and (other.evaluation == evaluation or evaluation == "selection")
                and (self.root / other.dir / "DONE").is_file()
            ):
                self.say(f"  {name} is identical to {other.name}: reusing it")
                return other
        run_dir = run_dir or self.root / "runs" / name
        resume = (run_dir / "config.json").exists()
        done_before = (run_dir / "DONE").exists()
        what = "reusing" if done_before else ("resuming" if resume else "training")
        self.say(f"  {what} {name} ({tcfg.model}, β={tcfg.beta:g}, {tcfg.epochs} epochs)")
        try:
            result = train(tcfg, run_dir, resume=resume)
        except ConfigError as e:
            raise ConfigError(
                f"{run_dir} holds a run with another configuration ({e}); use a new --out for "
                "this preset or delete that run directory"
            ) from None
        if not done_before:
            self.ips = result.summary.images_per_s_mean or self.ips
        metrics, fresh = self._evaluate(run_dir, evaluation)
        entry = RunEntry(
            name=name,
            stage=stage,
            model=tcfg.model,
            beta=tcfg.beta,
            epochs=tcfg.epochs,
            train_images=result.summary.steps * tcfg.batch_size,
            dir=self.rel_dir(run_dir),
            run_dir=str(run_dir.resolve()),
            host=socket.gethostname(),
            evaluation=evaluation,
            train=result.summary.to_dict(),
            eval=metrics,
            reused=done_before and fresh,
            config=tcfg.to_dict(),
        )
        self.runs[name] = entry
        return entry

    def _evaluate(self, run_dir: Path, kind: Evaluation) -> tuple[dict[str, float], bool]:
        """Evaluate `run_dir` (`full` or `selection`), reusing a stored evaluation with the same
        options made after the run finished. Returns (metrics, reused)."""
        ecfg = self.cfg.eval_config(kind)
        key = json.loads(json.dumps(vars(ecfg)))  # tuples → lists, as stored
        stored_path = run_dir / f"eval_{kind}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stored = json.loads(stored_path.read_text())
            if (
                stored["options"] == key
                and stored_path.stat().st_mtime >= (run_dir / "DONE").stat().st_mtime
            ):
                return stored["metrics"], True
        metrics = evaluate_run(run_dir, ecfg, log=lambda m: self.say(f"    {m}"))
        atomic_write_json(stored_path, {"options": key, "metrics": metrics})
        self.eval_s[kind] = metrics[keys.EVAL_TIME]
        return metrics, False
