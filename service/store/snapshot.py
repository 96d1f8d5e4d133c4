"""The records as one consistent snapshot, and back into an empty database: what ``enroll export`` and
``enroll restore`` move (the encrypted file around it is ``enroll.backup``'s).

A snapshot is every row of the tables that are the truth (persons, faces with their embeddings, crops and
photo hashes, API keys — hashes only, the keys themselves are never stored — and the audit trail), read in
one transaction while the service writes: on PostgreSQL a REPEATABLE READ transaction; on SQLite a read
transaction on the WAL database, which sees the database as of its first read while writers go on (no clear
copy of the biometric data is written anywhere, unlike a backup-API copy to a file). The index is not in it:
it follows the records, and a restored store rebuilds it from them (``RecordsStore.open`` through the
outbox).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import Any

from sqlalchemy import LargeBinary, Table, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigError
from .schema import api_keys, audit_events, faces, galleries, index_outbox, persons

# In this order: a face needs its person.
TABLES: tuple[Table, ...] = (persons, faces, api_keys, audit_events)
BY_NAME = {t.name: t for t in TABLES}
BATCH = 500


def binary_columns(table: Table) -> set[str]:
    return {c.name for c in table.columns if isinstance(c.type, LargeBinary)}


def columns(table: Table) -> list[str]:
    return [c.name for c in table.columns]


def read(engine: Engine) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every row of ``TABLES`` as (table name, values in ``columns`` order), all from one snapshot. A
    generator: the transaction stays open until it is exhausted or closed."""
    if engine.dialect.name == "sqlite":
        yield from _read_sqlite(str(engine.url.database))
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as db, db.begin():
        for table in TABLES:
            result = db.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(*table.columns).order_by(*table.primary_key.columns))
            for row in result:
                yield table.name, tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def _read_sqlite(path: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as raw:
        raw.execute("BEGIN")  # a read transaction: one snapshot for every table below (WAL)
        try:
            for table in TABLES:
                order = ", ".join(c.name for c in table.primary_key.columns)
                cursor = raw.execute(f"SELECT {', '.join(columns(table))} FROM {table.name} ORDER BY {order}")
                for row in cursor:
                    yield table.name, tuple(row)
        finally:
            raw.execute("ROLLBACK")


def existing(engine: Engine) -> dict[str, int]:
    """How many persons and faces the database holds (a restore goes only into an empty one)."""
    with engine.connect() as db:
        return {"persons": int(db.scalar(select(func.count()).select_from(persons)) or 0),
                "faces": int(db.scalar(select(func.count()).select_from(faces)) or 0)}


def restore(engine: Engine, rows: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Write the rows into an empty database in ONE transaction: a damaged or tampered file (the iterator
    raises) leaves nothing behind. Keys already there (the target's first-start keys) are kept and a backed-up
    key with the same id or hash is skipped; audit events get new ids after the target's own. Every restored
    person gets an outbox entry, so the index is rebuilt from the records at the store's next open."""
    counts = {t.name: 0 for t in TABLES}
    with engine.begin() as db:
        found = {"persons": int(db.scalar(select(func.count()).select_from(persons)) or 0),
                 "faces": int(db.scalar(select(func.count()).select_from(faces)) or 0)}
        if found["persons"] or found["faces"]:
            raise ConfigError(f"the target store is not empty ({found['persons']} persons, {found['faces']} "
                              f"faces): restore only into an empty store", details=found)
        keys = {r.id for r in db.execute(select(api_keys.c.id))} | {
            r.sha256 for r in db.execute(select(api_keys.c.sha256))}
        pending: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TABLES}
        for name, row in rows:
            if name == "api_keys" and (row["id"] in keys or row["sha256"] in keys):
                continue
            if name == "audit_events":
                row = {k: v for k, v in row.items() if k != "id"}
            pending[name].append(row)
            counts[name] += 1
            if len(pending[name]) >= BATCH:
                _flush(db, name, pending)
        for name in pending:
            _flush(db, name, pending)
        _enqueue_everyone(db)
    return counts


def _flush(db: Connection, name: str, pending: dict[str, list[dict[str, Any]]]) -> None:
    # Faces wait for every person (the foreign key): the snapshot lists all persons first anyway.
    if pending[name]:
        db.execute(insert(BY_NAME[name]), pending[name])
        pending[name] = []


def _enqueue_everyone(db: Connection) -> None:
    """Where a gallery row already exists (the target service started once, empty), count the restored
    persons and queue them all for its index; where none exists, the store's ``open`` does both."""
    for model_id, count in db.execute(select(persons.c.model_id, func.count()).group_by(persons.c.model_id)):
        if db.execute(update(galleries).where(galleries.c.model_id == model_id).values(persons=count)).rowcount:
            db.execute(insert(index_outbox).from_select(
                ["model_id", "person_id", "at"],
                select(persons.c.model_id, persons.c.id, persons.c.updated_at)
                .where(persons.c.model_id == model_id)))
