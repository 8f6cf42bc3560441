"""A throwaway PostgreSQL server for tests: initdb into a temp dir, a free port on 127.0.0.1,
run as the `postgres` user when root (PostgreSQL refuses to run as root), stopped afterwards."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(database: str = "vaelab") -> Iterator[str]:
    """Start a private cluster; yield a postgresql:// URL of a fresh database in it."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="vaelab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
            "start")  # fmt: skip
        started = True
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            database)  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    except subprocess.CalledProcessError as e:
        log = (root / "log").read_text()[-2000:] if (root / "log").is_file() else ""
        raise RuntimeError(f"{e.cmd[-1]} failed: {e.stderr[-2000:]} {log}") from None
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                run(str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w")
        shutil.rmtree(root, ignore_errors=True)
