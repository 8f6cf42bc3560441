"""Command-line flags derived from a dataclass: one flag per field, help from its docstring.

The dataclass is the single source of truth (as cleanrl derives its CLI from `Args`). `bool`
gives `--x/--no-x`, `Literal[...]` lists its values, `list[int]` takes comma-separated values.
Every flag defaults to None ("not given"), so a TOML file or a saved config can supply the value.

Weighed against tyro 1.0.17 (a dataclass-to-CLI library): `--help` for TrainConfig alone cost
0.23-0.25 s of CPU with tyro against 0.11-0.13 s for all of `vaelab train` here; its errors are
8-11-line boxes where vaelab's are one line naming the flag, and it fills in every default, which
would hide whether a flag was given (a TOML file or saved config supplies the rest).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
import typing
from collections.abc import Callable
from typing import Any, Literal


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal right below it in the class body)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source shipped: flags still work, terser help
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for pair in itertools.pairwise(body):
        match pair:
            case ast.AnnAssign(target=ast.Name(id=name)), ast.Expr(ast.Constant(value=str(doc))):
                docs[name] = " ".join(doc.split())
    return docs


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _scalar(kind: type, many: bool = False) -> Callable[[str], Any]:
    """argparse `type=` for int/float/str, or a comma-separated list of them (`many`), with a
    message that names the expected type."""
    names = {int: "an integer", float: "a number", str: "a string"}

    def one(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {names[kind]}, got {text!r}") from None

    def parse(text: str) -> Any:
        return [one(v.strip()) for v in text.split(",")] if many else one(text)

    return parse


def _default_text(f: dataclasses.Field) -> str:
    value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return "" if value in (None, dataclasses.MISSING) else f" (default {value})"


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> list[str]:
    """Add one flag per field of `cls`; returns the field names that got a flag."""
    docs, hints, added = field_docs(cls), typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if type(None) in typing.get_args(hint) and len(members) == 1:  # X | None: a flag of X
            hint = members[0]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        help_ = (docs.get(f.name, "").split(". ")[0].rstrip(".") + _default_text(f)).strip()
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_.replace("%", "%%")}
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            kw["metavar"] = "{" + ",".join(str(a) for a in args) + "}"
            # Not argparse `choices`: the config's own check names the field and the values.
            kw["type"] = _scalar(type(args[0]))
        elif origin is list:
            kw["type"] = _scalar(args[0], many=True)
            kw["metavar"] = f"{args[0].__name__.upper()},..."
        elif hint in (int, float, str):
            kw["type"] = _scalar(hint)
        else:
            continue  # a field type with no command-line spelling (set it in the TOML file)
        parser.add_argument(flag_name(f.name), **kw)
        added.append(f.name)
    return added


def given_values(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The flags among `names` that were given on the command line."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def to_flags(values: dict[str, Any]) -> list[str]:
    """The command line that gives these field values: the inverse of `given_values`.
    `--name=value` keeps a negative number from reading as a flag; floats print round-tripping."""
    argv = []
    for name, value in values.items():
        flag = flag_name(name)
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        else:
            text = ",".join(map(str, value)) if isinstance(value, list) else value
            argv.append(f"{flag}={text}")
    return argv
