"""Strict type checks of dataclass configs against their annotations.

TOML, JSON and the Python API hand over loosely typed values; Python would happily treat
`True` as the number 1 and `"no"` as a true boolean. Every config field is checked against its
annotation (bool is not a number, a string is not a bool, an int is fine where a float is
expected), so a new field is checked the moment it is declared.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, Literal

from vaelab.errors import ConfigError


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's fields (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe(hint: Any) -> str:
    """A user-facing name of a type: 'an integer', 'one of ae, vae', ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [describe(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or unset" if type(None) in args else "")
    if origin is list:
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def matches(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint` (bool is never a number; int is a valid float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(matches(v, args[0]) for v in value)
    if origin is tuple:
        return isinstance(value, (tuple, list))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation we do not model (callables, ...): not checked here


def check_fields(obj: object, *, what: str = "config field", source: str | None = None) -> None:
    """Raise `ConfigError` naming the first field of dataclass `obj` whose value has the wrong
    type, or a float field that is not finite."""
    prefix = f"{source}: " if source else ""
    # `type`, not mypy's inferred type[object]: that one fails lru_cache's Hashable check (mypy
    # compares the class's unbound __hash__), though every class is hashable
    cls: type = type(obj)
    for name, hint in field_types(cls).items():
        value = getattr(obj, name)
        if not matches(value, hint):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ConfigError(
                f"{prefix}invalid {what} '{name}': expected {describe(hint)}, "
                f"got {type(value).__name__} {shown}"
            )
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            raise ConfigError(
                f"{prefix}invalid {what} '{name}': must be a finite number, got {value!r}"
            )
