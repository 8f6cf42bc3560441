"""Which runs to explore: run directories as given, or the runs a study directory holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vaelab.errors import ConfigError, RunError

MAX_RUNS = 8  # side by side beyond this the panels are too narrow to read


@dataclass
class FoundRuns:
    dirs: list[Path]
    """Run directories, each with checkpoints/best.pt, in display order."""
    classifier: str | None
    """The reference-classifier variant a study recorded (None when no study said)."""


def _is_run(path: Path) -> bool:
    return (path / "checkpoints" / "best.pt").is_file()


def _study_runs(study: Path) -> tuple[list[Path], str | None]:
    """The AE and the tuned VAE named in study.json; else every finished run under runs/."""
    variant = None
    try:
        meta = json.loads((study / "study.json").read_text())
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta, dict):
        variant = (meta.get("classifier") or {}).get("variant")
        tuned = meta.get("tuned")
        chosen = [study / "runs" / "ae", *([study / "runs" / tuned] if tuned else [])]
        if tuned and all(_is_run(d) for d in chosen):
            return chosen, variant
    # An unfinished study has no "tuned" yet: show what has finished (DONE), in name order.
    done = sorted(d for d in (study / "runs").glob("*") if (d / "DONE").is_file() and _is_run(d))
    return done, variant


def find_runs(paths: list[str | Path]) -> FoundRuns:
    """Resolve command-line paths (run or study directories) to run directories."""
    dirs: list[Path] = []
    variant = None
    for raw in paths:
        path = Path(raw)
        if _is_run(path):
            found = [path]
        elif (path / "study.json").is_file() or (path / "runs").is_dir():
            found, variant = _study_runs(path)
            if not found:
                raise RunError(
                    f"study {path} has no finished runs yet; let `vaelab study --out {path}` "
                    "finish a stage first"
                )
        else:
            raise RunError(
                f"{path} is neither a run directory (checkpoints/best.pt) nor a study directory "
                "(study.json or runs/); train a run or run `vaelab study` first"
            )
        dirs += [d for d in found if d.resolve() not in {x.resolve() for x in dirs}]
    if len(dirs) > MAX_RUNS:
        names = ", ".join(str(d) for d in dirs)
        raise ConfigError(
            f"explore shows at most {MAX_RUNS} runs side by side, got {len(dirs)} ({names}); "
            "name the run directories you want"
        )
    return FoundRuns(dirs, variant)
