"""The CLI's one error boundary: every failure becomes one line `vaelab: error: ...`.

Exit codes: 2 invalid usage or configuration, 1 a runtime failure (data, run folder, disk,
memory), 130 interrupted, 141 a closed output pipe (as for tools killed by SIGPIPE), and 3 for
an unexpected internal error, which alone suggests `--debug` for the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable

from vaelab.errors import VaelabError

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


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("VAELAB_DEBUG", "").strip() not in ("", "0")


def os_error_message(e: OSError) -> str:
    """One line for an OSError: what happened, to which path, and what to do."""
    what, fix = _OS_ADVICE.get(e.errno or -1, (e.strerror or type(e).__name__, "check it"))
    path = e.filename if e.filename is not None else None
    where = f" on {path}" if path is not None else ""
    if e.filename2 is not None:
        where += f" -> {e.filename2}"
    return f"{what}{where}; {fix}"


def _is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _quiet_broken_pipe() -> int:
    # Python would flush stdout again at exit and fail a second time: point it at /dev/null.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced (tests) or already closed
        pass
    return EXIT_BROKEN_PIPE


def _say(msg: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr gone: the exit code must do
        print(f"vaelab: error: {msg}", file=sys.stderr)


def run(func: Callable[[], int], *, debug: bool) -> int:
    """Call `func` and map every exception to one line and an exit code (see the module)."""
    try:
        code = int(func() or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the boundary, not at exit
        return code
    except VaelabError as e:
        if debug:
            raise
        _say(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        _say("interrupted (Ctrl-C); finished work is kept, a training run resumes with --resume")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as e:
        if debug:
            raise
        _say(os_error_message(e))
        return 1
    except (MemoryError, RuntimeError) as e:
        if debug:
            raise
        if not _is_out_of_memory(e):
            return _unexpected(e)
        _say(
            "out of memory; lower --batch-size, --latent-dim or --channels (evaluate: --limit, "
            "--iw-samples, --n-samples), or use a device with more memory"
        )
        return 1
    except Exception as e:
        if debug:
            raise
        return _unexpected(e)


def _unexpected(e: BaseException) -> int:
    first = (str(e).strip().splitlines() or [""])[0][:200]
    _say(
        f"unexpected internal error: {type(e).__name__}: {first} (a bug in vaelab: please "
        "report it; run with --debug (or VAELAB_DEBUG=1) for the traceback)"
    )
    return EXIT_UNEXPECTED
