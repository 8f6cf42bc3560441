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


def run(func: Callable[[], int], *, debug: bool) -> int:
    """Call `func` and map every exception to one line and an exit code (see the module)."""
    try:
        code = int(func() or 0)
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
