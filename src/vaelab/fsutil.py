"""File-system helpers: atomic writes, checksums and advisory locks. Every file vaelab writes
goes through `atomic_write_*` (a fsynced temporary file in the same folder, then `os.replace`), so
a crash or a concurrent reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from vaelab.errors import RunError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_sha256(value: Any) -> str:
    """SHA-256 of a JSON value in canonical form (sorted keys): equal values, equal hashes
    (the definition hashes of sweeps and β searches stored in Optuna studies)."""
    return sha256_bytes(json.dumps(value, sort_keys=True).encode())


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], object]) -> Path:
    """Write `path` atomically: `writer` fills a temp file that then replaces the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():  # os.replace would fail late, after the whole write
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # os.write/fsync name no file
            raise type(e)(e.errno, e.strerror, str(path)) from e
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing); with `blocking=False` a
    held lock raises `RunError` at once. It dies with its process: a crash leaves no stale lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RunError(
                f"{path.parent} is in use by another vaelab process (lock {path.name}); "
                "wait for it to finish or use another directory"
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
