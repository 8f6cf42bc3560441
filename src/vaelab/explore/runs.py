"""Which runs to explore: run directories as given, or the runs a study directory holds.

Every file is read through the validated readers (study.json through `vaelab.study.schema`, DONE
and the checkpoints through `vaelab.train.checkpoint`, which also checks config.json), so a
damaged folder is refused with one line before the server starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from vaelab.errors import ConfigError, RunError
from vaelab.study.schema import REBUILD, load_study
from vaelab.train.checkpoint import read_done

MAX_RUNS = 8  # side by side beyond this the panels are too narrow to read


class FoundRuns(NamedTuple):
    dirs: list[Path]  # run directories, each with checkpoints/best.pt, in display order
    classifier: str | None  # the reference classifier a study recorded (None: no study said)


def _is_run(path: Path) -> bool:
    return (path / "checkpoints" / "best.pt").is_file()


def _study_runs(study: Path) -> tuple[list[Path], str | None]:
    """The AE and tuned VAE of study.json, else (unfinished) every finished run under runs/."""
    if not (study / "study.json").exists():
        done = sorted(
            d for d in (study / "runs").glob("*") if (d / "DONE").is_file() and _is_run(d)
        )
        for d in done:
            read_done(d)  # a damaged DONE is refused here, not halfway through serving
        return done, None
    result = load_study(study / "study.json")
    dirs = []
    for name in ("ae", result.tuned):
        if name not in result.runs or not _is_run(study / result.runs[name].dir):
            where = study / "study.json"
            raise RunError(f"{where} names run '{name}', which {study} lacks; {REBUILD}")
        dirs.append(study / result.runs[name].dir)
    return dirs, result.classifier.variant


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
