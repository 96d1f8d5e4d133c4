"""The records database: SQLite in the data dir by default, PostgreSQL (``database_url``) for several
workers and hosts. Opened once per process, schema upgraded by Alembic at open."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..errors import StoreUnavailable
from . import migrations
from .base import unavailable_on

log = logging.getLogger(__name__)
SQLITE_FILE = "records.sqlite3"
LOCK_FILE = "registration.lock"
INDEX_LOCK_FILE = "index.lock"
_ADVISORY_KEY = 0x66616365  # "face": the registration section's key among PostgreSQL advisory locks
INDEX_KEY = 0x696E6478  # "indx": the section that writes the index (applies the outbox, switches generations)
REBUILD_KEY = 0x72626C64  # "rbld": one index rebuild at a time
# The database is down, unreachable, out of disk or locked too long: a store failure (503), not our bug.
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)


db_errors = unavailable_on(_UNAVAILABLE, log)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, ``secure_delete`` so erased rows are overwritten with zeros (not left
    readable in free pages), foreign keys for the cascade from a person to their faces."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a power cut, not just a crash
    cursor.close()


@contextlib.contextmanager
def serialized(engine: Engine, lock_file: Path, *, key: int = _ADVISORY_KEY,
               wait_s: float | None = None) -> Iterator[None]:
    """A section that one process at a time runs, on every worker and host that shares the database:
    PostgreSQL's session advisory lock ``key`` (released by the server if the holder dies), or for SQLite (one
    host) an exclusive lock on ``lock_file`` beside it (released by the kernel if the holder dies). Waiting
    longer than ``wait_s`` (None: as long as it takes) is a store failure (503), never a hang."""
    deadline = None if wait_s is None else time.monotonic() + wait_s
    if engine.dialect.name == "postgresql":
        db = _locked_connection(engine, key, deadline)
        try:
            yield
        finally:
            try:
                db.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                db.commit()
            except _UNAVAILABLE:  # the server drops a session's locks with its connection
                log.warning("could not release a lock; the connection is closed instead")
            finally:
                db.close()
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreUnavailable("the store is busy", details={"op": lock_file.name}) from None
                    time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _locked_connection(engine: Engine, key: int, deadline: float | None) -> Connection:
    """A connection holding the advisory lock ``key``; a database that cannot be reached, or a lock not had
    by ``deadline``, is a store failure (503), like any other."""
    try:
        db = engine.connect()
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(details={"op": "lock"}) from exc
    try:
        if deadline is None:
            db.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            return db
        while not db.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar():
            if time.monotonic() >= deadline:
                raise StoreUnavailable("the store is busy", details={"op": "lock"})
            time.sleep(0.01)
        return db
    except BaseException as exc:
        db.close()
        if isinstance(exc, _UNAVAILABLE):
            raise StoreUnavailable(details={"op": "lock"}) from exc
        raise


POOL_SIZE, POOL_OVERFLOW = 10, 20


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / SQLITE_FILE}"


@db_errors
def open_database(url: str, data_dir: Path, timeout_s: float = 30.0) -> Engine:
    """An engine on ``url`` (empty: SQLite in ``data_dir``), schema at head. No call waits longer than
    ``timeout_s`` for a connection, a statement (PostgreSQL) or a write lock (SQLite): a database that hangs
    costs a request a bounded wait and a 503."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # records, index, keys: biometric data, owner-only
    if not url:
        path = data_dir / SQLITE_FILE
        if not path.exists():  # biometric data: owner-only from the first byte
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        url = sqlite_url(data_dir)
    # One engine per process serves the store, the keys and the audit writer: room for every request thread
    # holding a lock connection and a transaction at once, plus the background threads.
    pool = {"pool_pre_ping": True, "pool_timeout": timeout_s, "pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    if url.startswith("sqlite"):
        engine = create_engine(url, **pool, connect_args={"timeout": timeout_s})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, **pool, connect_args={
            "connect_timeout": max(1, round(timeout_s)),
            "options": f"-c statement_timeout={round(timeout_s * 1000)}"})
    with serialized(engine, data_dir / LOCK_FILE):  # workers starting together migrate one at a time
        migrations.upgrade(engine)
    return engine
