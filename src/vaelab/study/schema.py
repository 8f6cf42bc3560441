"""study.json as typed dataclasses: the one structure the study runner writes and the report
reads, every field under its own name. Reading it back checks every field (one line naming it
and the fix); the report cites a number by the path `json_path` derives from attribute reads, so
a renamed field fails in mypy and when the report is built, never silently in a sentence.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast

from vaelab.config import StudyConfig
from vaelab.errors import ConfigError, RunError
from vaelab.evaluate.keys import interp_key
from vaelab.schema import RECORD, read

SEP = "::"
"""Separates the parts of a study.json path: `runs::ae::eval::test/sse`."""
OMIT_NONE = {"omit_none": True}
"""Field metadata: the key is left out of study.json when the value is None (and may be absent)."""
REBUILD = "re-run `vaelab study` with the same --out to rebuild it (finished runs are reused)"

T = TypeVar("T")
Stage = Literal["ae", "extremes", "search", "tuned"]
"""The study stage that trained a run."""
Evaluation = Literal["full", "selection"]
"""selection: what choosing β needs, on fewer images."""


@dataclass
class Environment:
    """Versions, hardware and source revision (vaelab.runtime.environment)."""

    vaelab: str
    python: str
    torch: str
    numpy: str
    platform: str
    processor: str
    cpu_count: int | None
    torch_threads: int
    device: str
    git_commit: str | None
    argv: list[str]
    gpu: str | None = field(default=None, metadata=OMIT_NONE)
    """The GPU's name, on CUDA devices only."""


@dataclass
class SplitInfo:
    count: int
    label_counts: list[int]
    pixel_mean: float | None
    """Mean of x/255 (None for an empty split)."""
    shape: list[int]
    """One image: channels, height, width."""
    sha256: str


@dataclass
class DataInfo:
    """The dataset (vaelab.data.info): per-split counts and checksums, and where it came from."""

    __pydantic_config__: ClassVar = RECORD

    dataset: str
    splits: dict[str, SplitInfo]
    source: str | None
    cache: str
    classes: list[str] | None = field(default=None, metadata=OMIT_NONE)
    """A picture folder's class names (its sub-folders) in label order; absent otherwise."""


@dataclass
class Baselines:
    mean_image_sse: float
    """Test SSE per image of predicting the mean training image."""
    prior_norm: float
    """√(latent_dim): the typical norm of a sample of N(0, I)."""


@dataclass
class RunEntry:
    """One training run of the study with its evaluation."""

    __pydantic_config__: ClassVar = RECORD

    name: str
    stage: Stage
    model: Literal["ae", "vae"]
    beta: float
    epochs: int
    train_images: int
    """Images seen in training (steps × batch size)."""
    dir: str
    """Relative to the study directory where it lies inside it (runs/<name>), else absolute."""
    run_dir: str
    """The absolute path of the run directory on the machine that trained it."""
    host: str
    """The machine that trained it (a β-search worker's, for trials trained elsewhere)."""
    evaluation: Evaluation
    train: dict[str, Any]
    """The training summary (vaelab.train.loop)."""
    eval: dict[str, int | float]
    """eval.json metrics; keys as in vaelab.evaluate.keys (counts stay integers)."""
    reused: bool
    """Trained and evaluated in an earlier session."""
    config: dict[str, Any]
    """The run's resolved TrainConfig."""


@dataclass
class RungRecord:
    """One rung of the β search. β appear as keys in `f"{β:g}"` form."""

    rung: int
    epochs: int
    limit_train: int
    selection_loss: dict[str, float]
    runs: dict[str, str]
    promoted: list[float]


@dataclass
class SearchResult:
    """The β search: its trials, its rungs and the choice with its reason."""

    method: Literal["grid", "halving"]
    trials: list[float]
    """Every β of the first rung, ascending."""
    trial_runs: dict[str, str]
    """`f"{β:g}"` → the run of that β in the first rung."""
    log: list[str]
    rungs: list[RungRecord]
    chosen_beta: float
    eligible: list[float]
    reason: str
    fallback: bool
    """No β met both thresholds; the lowest selection loss decided."""
    best_decade: float
    rule: str
    """The successive-halving rule in words ("" for grid)."""
    storage: str
    """The Optuna storage of the search's trials (password hidden)."""
    study_name: str
    """The Optuna study in that storage."""

    def trial_run(self, beta: float) -> str:
        """The first-rung run of `beta`."""
        return self.trial_runs[f"{beta:g}"]


@dataclass
class CodeStats:
    """Where a model's test codes μ lie, compared with the N(0, I) prior."""

    prior_nn_ratio: float
    """Distance from a prior sample to its nearest code over that of a held-out code."""
    norm_mean: float
    dim_std_min: float
    dim_std_max: float
    dim_mean_abs_max: float


@dataclass
class InterpolationSummary:
    """A run's interpolation measures along one kind of path; each field is the eval.json key
    `interp_key(mode, field)`."""

    mean_conf: float
    min_conf: float
    realism_median: float
    realism_p90: float
    realism_worst: float

    @classmethod
    def from_eval(cls, metrics: dict[str, float], mode: str) -> InterpolationSummary:
        return cls(**{f.name: metrics[interp_key(mode, f.name)] for f in dataclasses.fields(cls)})


@dataclass
class ClassifierInfo:
    """The reference classifier every feature-based measure uses."""

    variant: str
    test_accuracy: float | None
    """None for the label-free network of unlabelled images (nothing to score it against)."""
    epochs: int
    train_images: int


@dataclass
class StudyResult:
    """Everything study.json holds."""

    __pydantic_config__: ClassVar = RECORD  # for the nested records too

    config: StudyConfig
    env: Environment
    data: DataInfo
    baselines: Baselines
    runs: dict[str, RunEntry]
    search: SearchResult
    tuned: str
    """Name of the tuned VAE's run."""
    code_stats: dict[str, CodeStats]
    """For the AE and the tuned VAE, by run name."""
    interpolation: dict[str, InterpolationSummary]
    """By "<model label> <mode>": AE lerp, VAE β=1 slerp, ..."""
    representation: dict[str, dict[str, float]]
    """Probe accuracies (keys.PROBE_LINEAR, keys.PROBE_KNN) of every fully evaluated run."""
    classifier: ClassifierInfo
    stage_time_s: dict[str, float]
    stage_order: list[str]
    run_order: list[str]
    compute_time_s: float
    """Training + evaluation seconds of every run, summed over sessions."""
    train_images: int
    wall_time_s: float
    """This session's wall time."""

    @property
    def classes(self) -> int:
        """How many labels the train split holds (0 without labels)."""
        return sum(1 for n in self.data.splits["train"].label_counts if n)

    @property
    def labelled(self) -> bool:
        """Whether the images had labels: an unlabelled evaluation marks each measure it could
        not take as eval.json's `skipped/<key>`."""
        return not any(k.startswith("skipped/") for r in self.runs.values() for k in r.eval)

    def to_dict(self) -> dict[str, Any]:
        """The content of study.json."""
        return cast(dict[str, Any], to_json(self))

    @classmethod
    def from_dict(cls, data: Any, source: str = "study.json") -> StudyResult:
        """Read study.json's content back; a bad field or a run name that names no run raises
        RunError naming it."""
        result = parse(cls, data, source)
        try:
            result.config.validate()
        except ConfigError as e:
            raise RunError(f"{source}: {e}; {REBUILD}") from None
        for name, entry in result.runs.items():
            if entry.name != name:
                raise RunError(f"{source}: run '{name}' is named '{entry.name}'; {REBUILD}")
        cited = {"tuned": [result.tuned], "search::trial_runs": result.search.trial_runs.values()}
        cited["search::rungs"] = [n for r in result.search.rungs for n in r.runs.values()]
        for where, names in cited.items():
            for n in names:
                if n not in result.runs:
                    raise RunError(f"{source}: '{where}' names run '{n}', not in runs; {REBUILD}")
        return result


def load_study(path: str | Path) -> StudyResult:
    """Read and check STUDY_DIR/study.json."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read {path} ({e}); {REBUILD}") from None
    return StudyResult.from_dict(data, str(path))


# ---- study.json paths ------------------------------------------------------------------------
class _Probe:
    """Stands in for a study value and records the fields and items read from it."""

    __slots__ = ("_parts", "_value")

    def __init__(self, value: Any, parts: tuple[str, ...]) -> None:
        self._value, self._parts = value, parts

    def __getattr__(self, name: str) -> _Probe:
        value = self._value
        fields = dataclasses.fields(value) if dataclasses.is_dataclass(value) else ()
        if name not in {f.name for f in fields}:
            raise AttributeError(f"{SEP.join(self._parts) or 'study.json'} has no field {name!r}")
        return _Probe(getattr(value, name), (*self._parts, name))

    def __getitem__(self, key: str) -> _Probe:
        return _Probe(self._value[key], (*self._parts, str(key)))


def json_path(study: StudyResult, get: Callable[[StudyResult], object]) -> str:
    """The study.json path of the value `get` reads by fields and items only:
    json_path(s, lambda s: s.code_stats["ae"].norm_mean) == "code_stats::ae::norm_mean"."""
    probe = get(cast(StudyResult, _Probe(study, ())))
    if not isinstance(probe, _Probe) or not probe._parts:
        raise TypeError("json_path: `get` must read a field or item of the study")
    return SEP.join(probe._parts)


def resolve(data: dict[str, Any], path: str) -> Any:
    """The value at a study.json path in study.json's content."""
    node: Any = data
    for part in path.split(SEP):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# ---- conversion -------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """Dataclasses (nested in dicts and lists) as plain JSON values, fields under their names;
    a StudyConfig as its flat record."""
    if isinstance(value, StudyConfig):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_none") and getattr(value, f.name) is None)
        }
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def parse(cls: type[T], data: Any, source: str = "study.json", fix: str = REBUILD) -> T:
    """Dataclass `cls` from JSON content (vaelab.schema's strict reader); a mismatch is one
    RunError line naming the field, then `fix`."""
    return read(cls, data, source=source, error=RunError, fix=fix)
