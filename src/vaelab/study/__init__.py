"""The study: stages as resumable runs, a measured β search, and a report with evidence.

Importing this package imports no torch (the report reads study.json through it); `run_study`
loads the stages on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vaelab import callable_package, lazy_attributes
from vaelab.study.presets import PRESETS, StudyConfig, make_config
from vaelab.study.schema import StudyResult, load_study

if TYPE_CHECKING:
    from vaelab.study.runner import run_study

__all__ = ["PRESETS", "StudyConfig", "StudyResult", "load_study", "make_config", "run_study"]


__getattr__ = lazy_attributes(__name__, {"run_study": "vaelab.study.runner"})


callable_package(__name__)
