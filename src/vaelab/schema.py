"""The one strict reader of every document vaelab reads (TOML configs, config.json, DONE,
eval.json, study.json, tune definitions), each a dataclass checked by pydantic in strict mode: a
bool is never a number, unknown and missing keys are refused, `Annotated` ranges are checked, and
the first problem is one line naming the field path. pydantic is imported on the first read, so
`import vaelab` does not pay for it.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any, TypeVar

from vaelab.errors import ConfigError

T = TypeVar("T")
CONFIG = {"strict": True, "extra": "forbid", "allow_inf_nan": False}
"""`__pydantic_config__` of a config: finite numbers only (a NaN β or learning rate is a typo)."""
RECORD = {"strict": True, "extra": "forbid"}
"""`__pydantic_config__` of a record vaelab wrote (metrics may be NaN or infinite)."""


@cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def _json_value(value: Any) -> Any:
    """What `json.dumps` cannot write (a TOML date, a Path given to the API) reads as an object,
    so a number, string or list field refuses it instead of taking its text."""
    return {type(value).__name__: str(value)}


def read(
    cls: type[T],
    data: Any,
    *,
    source: str = "",
    what: str = "field",
    error: type[Exception] = ConfigError,
    fix: str = "",
) -> T:
    """`data` as a validated `cls`; the first problem raises `error`, one line:
    "SOURCE: invalid WHAT 'a::b': should be an integer, got True; FIX"."""
    from pydantic import ValidationError

    # JSON mode: strict JSON takes objects for dataclasses and arrays for tuples, as the files
    # hold them, while strict Python mode would want the instances themselves.
    text = json.dumps(data, default=_json_value)
    try:
        return _adapter(cls).validate_json(text)  # type: ignore[arg-type,no-any-return]
    except ValidationError as e:
        message = _message(e.errors(include_url=False), what, cls)
    prefix = f"{source}: " if source else ""
    raise error(prefix + message + (f"; {fix}" if fix else "")) from None


WORDS = {  # pydantic's words, plainer, in order
    " or Input should be": " or",
    "a valid dictionary": "an object",
    "a valid list": "a list",
    "a valid integer": "an integer",
    "a valid number": "a number",
    "a valid string": "a string",
    "a valid boolean": "true or false",
    "a valid tuple": "a list",
    "a valid array": "a list",
    # "Input should be a number", "List should have at least 4 items after validation, not 3"
    "Input s": "s",
    "List s": "s",
    " after validation": "",
}


def _message(errors: list[Any], what: str, cls: type) -> str:
    unknown = [e["loc"] for e in errors if e["type"] == "unexpected_keyword_argument"]
    if unknown:
        names = ", ".join(f"'{'::'.join(map(str, u))}'" for u in unknown)
        valid = ", ".join(sorted(f.name for f in dataclasses.fields(cls)))  # type: ignore[arg-type]
        return f"unknown {what}(s) {names}" + (
            f"; valid: {valid}" if max(map(len, unknown)) == 1 else ""
        )
    loc = _place(errors[0]["loc"])
    # a union's members fail together, each at the value's place plus the member's name
    union = [e for e in errors if _place(e["loc"]) == loc]
    first = union[0]
    where = "::".join(map(str, loc))
    if first["type"] == "missing":
        return f"{what} '{where}' is missing"
    problem = " or ".join(e["msg"] for e in union)
    for words, plain in WORDS.items():
        problem = problem.replace(words, plain)
    shown = repr(first["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if not where:
        return f"the top level {problem}, got {shown}"
    return f"invalid {what} '{where}': {problem}, got {shown}"


def _place(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error's location without the union member it names (`runs::ae::eval::test/sse::int`)."""
    tag = loc[-1] if loc else None
    is_member = tag in ("int", "float", "bool", "str") or str(tag).startswith("list[")
    return loc[:-1] if is_member else loc


def check(obj: T, **kwargs: Any) -> T:
    """A validated copy of dataclass instance `obj` (built in Python, e.g. through the API)."""
    return read(type(obj), dataclasses.asdict(obj), **kwargs)  # type: ignore[call-overload]
