"""The study: stages as resumable runs, a measured β search, and a report with evidence."""

from vaelab.study.presets import PRESETS, StudyConfig, make_config
from vaelab.study.runner import run_study

__all__ = ["PRESETS", "StudyConfig", "make_config", "run_study"]
