"""Tests that need a tool from outside the package (a system program, a dataset, an extra).

Where the tool is missing the test is skipped with the way to install it, except under
`VAELAB_REQUIRE_ALL=1` (set by .ci/run, which installs every one of them): there a missing tool
is a failure, so a broken install cannot pass as a green run with skips.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def require_all() -> bool:
    return os.environ.get("VAELAB_REQUIRE_ALL", "").strip() == "1"


def missing(reason: str) -> NoReturn:
    """Skip (or, under VAELAB_REQUIRE_ALL=1, fail) the test, module or fixture calling this."""
    if require_all():
        pytest.fail(f"{reason} [VAELAB_REQUIRE_ALL=1: a missing tool fails]", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(present: object, reason: str) -> None:
    """Go on when `present` is truthy; otherwise `missing(reason)`."""
    if not present:
        missing(reason)


def need_module(name: str, reason: str) -> ModuleType:
    """The module `name`, imported; `missing(reason)` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(reason)
