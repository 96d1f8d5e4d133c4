"""The records database: SQLite in the data dir by default, PostgreSQL (``database_url``) for several
workers and hosts. Opened once per process, schema upgraded by Alembic at open."""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from ..errors import StoreUnavailable
from . import migrations

log = logging.getLogger(__name__)
T = TypeVar("T")
SQLITE_FILE = "records.sqlite3"
# The database is down, unreachable, out of disk or locked too long: a store failure (503), not our bug.
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)


def db_errors(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except _UNAVAILABLE as exc:
            log.error("database call failed", extra={"op": fn.__name__, "error": type(exc).__name__})
            raise StoreUnavailable(details={"op": fn.__name__}) from exc
    return wrapper


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, ``secure_delete`` so erased rows are overwritten with zeros (not left
    readable in free pages), foreign keys for the cascade from a person to their faces."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a power cut, not just a crash
    cursor.close()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / SQLITE_FILE}"


@db_errors
def open_database(url: str, data_dir: Path) -> Engine:
    """An engine on ``url`` (empty: SQLite in ``data_dir``), schema at head."""
    if not url:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / SQLITE_FILE
        if not path.exists():  # biometric data: owner-only from the first byte
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        url = sqlite_url(data_dir)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrations.upgrade(engine)
    return engine
