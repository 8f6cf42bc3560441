"""Errors that the CLI prints as one line (problem and fix) instead of a traceback."""

from __future__ import annotations


class VaelabError(Exception):
    """A user-facing failure. The message names the problem and how to fix it."""

    exit_code = 1


class ConfigError(VaelabError):
    """An invalid configuration value, detected before any work starts."""

    exit_code = 2


class UsageError(ConfigError):
    """A command line that argparse cannot parse (unknown flag, missing argument, bad value)."""


class DataError(VaelabError):
    """A dataset that cannot be obtained, parsed or verified."""


class RunError(VaelabError):
    """A run directory in a state that forbids the requested action (locked, finished, ...)."""


class TrainingInterrupted(RunError):
    """Training stopped by a signal; its last checkpoint resumes it."""

    exit_code = 130


def first_line(e: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message (its type name when empty), for one-line errors."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]
