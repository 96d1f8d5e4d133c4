"""Keeping the index in step with the records, and making erasure final on disk."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from .chroma_client import purge_files
from .chroma_index import PersonIndex
from .rows import vector
from .schema import persons

log = logging.getLogger(__name__)


def reconcile(engine: Engine, index: PersonIndex, model_id: str) -> dict[str, int]:
    """Make the index match the records: add missing persons, refresh stale templates (their ``updated_at``
    differs), remove vectors without a record. Idempotent; what it fixed is logged and returned. A full
    scan of both, in pages: run at start and by ``enroll repair``."""
    indexed = index.stamps()
    fixed = {"added": 0, "refreshed": 0, "removed": 0}
    known = set()
    with engine.connect() as db:
        rows = db.execution_options(yield_per=1000).execute(
            select(persons.c.id, persons.c.updated_at, persons.c.template).where(persons.c.model_id == model_id))
        for row in rows:
            known.add(row.id)
            if indexed.get(row.id) != row.updated_at:
                fixed["added" if row.id not in indexed else "refreshed"] += 1
                index.upsert(row.id, vector(row.template), row.updated_at)
    orphans = [pid for pid in indexed if pid not in known]
    index.delete(orphans)
    fixed["removed"] = len(orphans)
    if any(fixed.values()):
        log.warning("index reconciled with the records", extra=fixed)
    return fixed


def compact(engine: Engine, index: PersonIndex, model_id: str, index_files: Path | None) -> dict[str, Any]:
    """Overwrite what deletions left in the files. SQLite already zeroes deleted rows (``secure_delete``);
    its write-ahead log, which still holds the pages as they were, is checkpointed and truncated here
    (PostgreSQL: VACUUM, which frees but does not zero). The index is rebuilt from the records, because
    Chroma only marks deleted vectors; for the embedded index, Chroma's database is then vacuumed and the
    dropped collection's HNSW folder removed."""
    started = time.monotonic()
    with engine.connect() as db:
        rows = db.execution_options(yield_per=1000).execute(
            select(persons.c.id, persons.c.template, persons.c.updated_at).where(persons.c.model_id == model_id))
        index.rebuild((r.id, vector(r.template), r.updated_at) for r in rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        if engine.dialect.name == "sqlite":
            db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            db.exec_driver_sql("VACUUM persons")
            db.exec_driver_sql("VACUUM faces")
    if index_files is not None:
        purge_files(index_files)
    seconds = round(time.monotonic() - started, 2)
    log.info("compacted", extra={"model_id": model_id, "seconds": seconds})
    return {"model": model_id, "seconds": seconds}
