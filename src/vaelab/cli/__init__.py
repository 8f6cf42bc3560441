"""The `vaelab` command line: thin argparse wrappers over the Python API, and its one error
boundary: every failure becomes one line `vaelab: error: ...`. Command modules are imported when
the parser is built, heavy modules (torch, the data layer) only when one runs.

Exit codes: 2 invalid usage or configuration, 1 a runtime failure (data, run folder, disk,
memory), 130 interrupted, 141 a closed output pipe (as for tools killed by SIGPIPE), and 3 for
an unexpected internal error, which alone suggests `--debug` for the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from vaelab import __version__
from vaelab.errors import UsageError, VaelabError

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_OS_ADVICE = {
    errno.ENOSPC: ("disk full", "free space on that disk (or write elsewhere) and run it again"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota, then run it again"),
    errno.EACCES: ("permission denied", "choose a location you may write to or fix permissions"),
    errno.EPERM: ("operation not permitted", "choose another location or fix permissions"),
    errno.EROFS: ("read-only file system", "choose a writable location"),
    errno.EISDIR: ("is a directory", "give a file path, not a folder"),
    errno.ENOTDIR: ("a part of the path is a file", "check the path; a folder was expected"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EIO: ("input/output error", "the disk may be failing: check it, then run it again"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) and run it again"),
}
OUT_OF_MEMORY = (
    "out of memory; lower --batch-size, --latent-dim or --channels (evaluate: --limit, "
    "--iw-samples, --n-samples), or use a device with more memory"
)


def os_error_message(e: OSError) -> str:
    """One line for an OSError: what happened, to which path, and what to do."""
    what, fix = _OS_ADVICE.get(e.errno or -1, (e.strerror or type(e).__name__, "check it"))
    where = f" on {e.filename}" if e.filename is not None else ""
    if e.filename2 is not None:
        where += f" -> {e.filename2}"
    return f"{what}{where}; {fix}"


def _explain(e: BaseException) -> tuple[str, int]:
    """(the one line, the exit code) of any failure; see the module for the codes."""
    if isinstance(e, VaelabError):
        return str(e), e.exit_code
    if isinstance(e, KeyboardInterrupt):
        msg = "interrupted (Ctrl-C); finished work is kept, a training run resumes with --resume"
        return msg, EXIT_INTERRUPTED
    if isinstance(e, OSError):
        return os_error_message(e), 1
    text = str(e)
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return OUT_OF_MEMORY, 1
    if isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text):
        return OUT_OF_MEMORY, 1
    first = (text.strip().splitlines() or [""])[0][:200]
    return (
        f"unexpected internal error: {type(e).__name__}: {first} (a bug in vaelab: please "
        "report it; run with --debug (or VAELAB_DEBUG=1) for the traceback)"
    ), EXIT_UNEXPECTED


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
    """Run one command; every exception becomes one line and an exit code (see the module)."""
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

    try:
        code = int(command() or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the boundary, not at exit
        return code
    except BrokenPipeError:
        # Python would flush stdout again at exit and fail a second time: point it at /dev/null.
        with contextlib.suppress(OSError, ValueError):  # stdout replaced (tests) or closed
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as e:
        if debug:
            raise
        message, code = _explain(e)
        with contextlib.suppress(OSError, ValueError):  # stderr gone: the exit code must do
            print(f"vaelab: error: {message}", file=sys.stderr)
        return code
