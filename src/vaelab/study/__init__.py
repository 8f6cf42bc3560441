"""The study: stages as resumable runs, a measured β search, and a report with evidence."""

from vaelab import callable_package
from vaelab.study.presets import PRESETS, StudyConfig, make_config
from vaelab.study.runner import run_study
from vaelab.study.schema import StudyResult, load_study

__all__ = ["PRESETS", "StudyConfig", "StudyResult", "load_study", "make_config", "run_study"]

callable_package(__name__)
