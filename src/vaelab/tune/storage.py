"""Where an Optuna study lives: an embedded SQLite file by default, any SQLAlchemy URL
(PostgreSQL) to share it between machines; a study opens only with its own definition."""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from vaelab.config import Heartbeats
from vaelab.errors import ConfigError, RunError
from vaelab.fsutil import file_lock, json_sha256

DEFINITION_ATTR = "vaelab:definition"
HASHES_ATTR = "vaelab:definition_hashes"
Direction = Literal["minimize", "maximize"]


def silence_optuna_notices() -> None:
    """Optuna warns on every use of its heartbeats (experimental since 2.8, stable in use) and
    when ask/tell meets them (vaelab's workers beat the heart themselves), and logs each trial at
    INFO: noise to users."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # vaelab's own log lines say more


def default_storage_url(out_dir: str | Path, file: str = "sweep.db") -> str:
    return f"sqlite:///{(Path(out_dir) / file).resolve()}"


def normalise_url(url: str) -> str:
    """`postgresql://...` means psycopg (v3), the driver vaelab installs, not psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "a postgresql:// storage needs the psycopg driver; install it with "
                "pip install 'vaelab[postgres]'"
            ) from None
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    with contextlib.suppress(Exception):
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    return url.split("@")[-1]


SQLITE_BUSY_S = 60.0
"""How long SQLite waits for another writer: several local workers' heartbeats and trial updates
come in short bursts; a lock held longer is another program's."""


def open_storage(url: str, cfg: Heartbeats | None = None) -> RDBStorage:
    """The RDB storage: without `cfg` an existing one, to read; with it, made if new and with
    heartbeats: a trial silent for `grace_period` seconds is failed by the next worker that asks
    for one, and queued again (up to `max_retry` times)."""
    silence_optuna_notices()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}  # survive a database restart
    with storage_errors(url), contextlib.ExitStack() as stack:
        url = normalise_url(url)
        if url.startswith("sqlite:///"):
            db = sqlite_file(url, must_exist=cfg is None)
            engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_S}}
            if cfg is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
                # WAL lets readers run beside the one writer
                with contextlib.closing(sqlite3.connect(db, timeout=SQLITE_BUSY_S)) as con:
                    con.execute("PRAGMA journal_mode=WAL")
        if cfg is None:
            return RDBStorage(url, engine_kwargs, skip_table_creation=True)
        if url.startswith("postgresql"):
            # Workers started at once on a new database would race to create Optuna's
            # tables (duplicate-key errors): one creates them while the rest wait.
            engine = sqlalchemy.create_engine(url)
            stack.callback(engine.dispose)
            stack.enter_context(_advisory_lock(engine, "schema"))
        retry = RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retry)
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            heartbeat_stale_trial_callback=retry,
        )


def sqlite_file(url: str, must_exist: bool) -> Path:
    """The database file of a sqlite:/// URL; a URL that names no file, or a folder, is refused
    before SQLite says only "unable to open database file"."""
    name = url.removeprefix("sqlite:///")
    if not name:
        raise ConfigError(
            f"the study storage {url} names no database file; write sqlite:///FILE.db "
            "(relative to this folder) or sqlite:////ABSOLUTE/PATH.db"
        )
    path = Path(name)
    if path.is_dir():
        raise ConfigError(
            f"the study storage {url} names a folder; name a database file in it, e.g. "
            f"sqlite:///{path / 'study.db'}"
        )
    if must_exist and not path.is_file():
        raise ConfigError(
            f"no study storage at {path} (no such file); pass the --storage URL the sweep or "
            "study was started with"
        )
    return path


# (words in the database's message, the fix the error line gives)
FIXES = (
    ("not a database", "name a new file, or move this one away if it is not a study storage"),
    ("unable to open", "pass a place this user can create and write files in"),
    ("cannot make the folder", "pass a place this user can create and write files in"),
    ("locked", "another program holds the file: stop it, or wait for it"),
    ("disk i/o", "put the file on a local disk, or use PostgreSQL to share a study"),
    ("refused", "start the database server, or correct the host and port in the URL"),
    ("role", "check the user name and password in the URL"),
    ("password", "check the user name and password in the URL"),
    ("database", "create the database (createdb NAME), or name an existing one in the URL"),
)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """A database or file error while opening the storage becomes one line naming the URL
    (password hidden), the database's reason and the fix."""
    try:
        yield
    except (
        sqlalchemy.exc.SQLAlchemyError,
        sqlite3.Error,
        optuna.exceptions.StorageInternalError,  # Optuna's wrapper of a database error
        OSError,  # the folder of a SQLite file cannot be made
        ImportError,
        ValueError,
    ) as e:
        cause: BaseException = e
        if isinstance(e, optuna.exceptions.StorageInternalError) and e.__cause__ is not None:
            cause = e.__cause__  # the database's own words
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(e).__name__
        # psycopg: "(psycopg.OperationalError) connection failed: ... failed: FATAL:  reason"
        reason = re.split(r"failed: |FATAL: ", re.sub(r"^\([\w.]+\) ", "", text))[-1].strip()
        if isinstance(e, OSError):  # from making the folder of a SQLite file
            reason = f"cannot make the folder {e.filename}: {e.strerror}"
        fix = next(
            (fix for words, fix in FIXES if words in reason.lower()),
            "check the URL, that the database server runs and that the database exists",
        )
        raise RunError(f"cannot open the study storage {redact(url)} ({reason}); {fix}") from None


@contextlib.contextmanager
def _advisory_lock(engine: sqlalchemy.engine.Engine, name: str) -> Iterator[None]:
    """A PostgreSQL session-level advisory lock, which dies with a crashed worker's connection."""
    with engine.connect() as con:
        con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
        try:
            yield
        finally:
            con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})


def definition_hashes(definition: dict[str, Any]) -> dict[str, str]:
    """A hash per named part: a stored study whose parts differ is refused, naming them."""
    return {part: json_sha256(value)[:16] for part, value in definition.items()}


def open_study(
    storage: RDBStorage,
    name: str,
    definition: dict[str, Any],
    directions: Sequence[Direction],
    **kw: Any,
) -> optuna.Study:
    """Create the study or join the one of that name, refusing another definition (a sweep's
    space, objectives, base config, evaluation; the β search's trial settings)."""
    study = optuna.create_study(
        storage=storage, study_name=name, directions=directions, load_if_exists=True, **kw
    )
    hashes = definition_hashes(definition)
    stored = study.user_attrs.get(HASHES_ATTR)
    if stored is None:
        study.set_user_attr(DEFINITION_ATTR, definition)
        study.set_user_attr(HASHES_ATTR, hashes)
    elif stored != hashes:
        parts = [p for p in hashes if stored.get(p) != hashes[p]]
        raise ConfigError(
            f"study '{name}' in {redact(storage.url)} was created with a different "
            f"{' and '.join(parts)}; run the original config again to continue it, or pass "
            "--name NEW to start another study"
        )
    elif [d.name.lower() for d in study.directions] != list(directions):
        raise ConfigError(f"study '{name}' has other objective directions; use --name NEW")
    return study


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial (one objective) or the Pareto front; none before a trial is complete."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    return [study.best_trial] if len(study.directions) == 1 else list(study.best_trials)


def load_existing_study(url: str, name: str | None) -> optuna.Study:
    """A study for reading (reports, workers): `name`, or the storage's only study."""
    storage = open_storage(url)
    with storage_errors(url):
        names = optuna.get_all_study_names(storage)
    listed = ", ".join(names) or "none"
    if name is None and len(names) != 1:
        raise ConfigError(f"{redact(url)} holds studies {listed}; choose one with --name")
    name = names[0] if name is None else name
    if name not in names:
        raise ConfigError(f"no study '{name}' in {redact(url)} (it has: {listed})")
    return optuna.load_study(study_name=name, storage=storage)


@contextlib.contextmanager
def ask_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """Serialise "count the trials, then ask for one" among a study's workers, so a study of N
    trials gets N: a file lock beside a SQLite database (its workers share one machine), an
    advisory lock on PostgreSQL."""
    url = storage.url
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        with file_lock(db.parent / f".{db.name}.{_key(study_name)}.lock"):
            yield
    elif url.startswith("postgresql"):
        with _advisory_lock(storage.engine, study_name):
            yield
    else:
        yield  # other databases: a rare extra trial is the only cost


def _key(name: str) -> int:
    """A stable signed 63-bit key for the study name."""
    return int.from_bytes(hashlib.sha256(f"vaelab-sweep:{name}".encode()).digest()[:8], "big") >> 1


@contextlib.contextmanager
def heartbeat(storage: RDBStorage, trial_id: int, interval: float) -> Iterator[None]:
    """Records the trial's heartbeat every `interval` seconds from a thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            # A failed beat (a database hiccup) must not end the beating: a silent thread would
            # let the trial be declared dead and retried while this process still trains it.
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError):
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
