"""The `vaelab` command line: thin argparse wrappers over the Python API.

Every failure is one line `vaelab: error: ...` (`vaelab.cli.boundary`). Command modules are
imported when the parser is built, heavy modules (torch, the data layer) only when one runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from vaelab import __version__
from vaelab.errors import UsageError

__all__ = ["COMMANDS", "build_parser", "main"]

# Each module defines `register(subparsers)`: a new command is one row here and one module.
COMMANDS = (
    "vaelab.cli.data",
    "vaelab.cli.train",
    "vaelab.cli.evaluate",
    "vaelab.cli.study",
    "vaelab.cli.explore",
    "vaelab.cli.sweep",
)


class Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` (one line, exit 2) instead of exiting. Abbreviated
    flags are refused: `--epoch 3` silently meaning `--epochs 3` lets a typo train."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vaelab",
        description="Train, evaluate and explain auto-encoders and beta-VAEs on MNIST-like images.",
        epilog="Errors are one line `vaelab: error: ...`; --debug (anywhere) shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (also: VAELAB_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from vaelab.cli import boundary

    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("VAELAB_DEBUG", "").strip() not in ("", "0")
    # --debug is accepted anywhere (before or after the command); argparse sees it nowhere.
    args_list = [a for a in args_list if a != "--debug"]

    def command() -> int:
        parser = build_parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as e:  # --help and --version print and exit 0
            return e.code if isinstance(e.code, int) else 0
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return args.func(args)

    return boundary.run(command, debug=debug)
