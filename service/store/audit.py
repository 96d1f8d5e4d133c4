"""The audit trail in the records database (``audit_events``), beside the JSON-lines file: the file is the
durable record, the table the one an operator can query ("who verified against this person last week?")
from any worker or host (``GET /v1/audit``).

A logging handler on the audit loggers queues each event; one writer thread per process inserts them in
batches, so a request never waits for an audit insert and a busy store is not hit once per request. The queue
is bounded: if the database stalls, events beyond it are dropped from the table (still in the file) and the
drop is counted in the log rather than holding requests. A kill -9 loses at most the last batch interval's
events from the table, never from the file. Rows older than ``retention_days`` are deleted hourly.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from ..core.records import iso, now_iso
from ..logs import actor, client_ip, request_id
from .database import db_errors
from .schema import audit_events

log = logging.getLogger("faceid.audit.table")
BATCH_INTERVAL_S = 0.25
QUEUE_SIZE = 10_000
PURGE_EVERY_S = 3600.0
PURGE_CHUNK = 5000
_OWN = {"op", "decision", "person_id", "match", "similarity", "best_similarity"}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def event_row(record: logging.LogRecord) -> dict[str, Any]:
    """A log record of the audit loggers as a row: ids, decision and score; the rest as a small JSON object."""
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    match, decision = extra.get("match"), extra.get("decision")
    person = extra.get("person_id") or (match if isinstance(match, str) else None)  # a key's id stays in details
    score = extra.get("similarity", extra.get("best_similarity"))
    rest = {k: v for k, v in extra.items() if k not in _OWN}
    return {"at": iso(datetime.fromtimestamp(record.created, UTC)),
            "op": str(extra.get("op") or record.getMessage())[:64],
            "actor": actor.get(), "client_ip": client_ip.get(), "request_id": request_id.get(),
            "person_id": str(person)[:128] if person else None,
            "decision": str(decision)[:64] if decision else None,
            "similarity": float(score) if isinstance(score, (int, float)) else None,
            "details": json.dumps(rest, default=str)[:2000]}


class AuditTableHandler(logging.Handler):
    """Queues audit events and writes them from one thread (see the module's note)."""

    def __init__(self, engine: Engine, retention_days: int) -> None:
        super().__init__(logging.INFO)
        self.engine = engine
        self.retention_days = retention_days
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE_SIZE)
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faceid-audit-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(event_row(record))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        purged = 0.0
        while not self._stop.wait(BATCH_INTERVAL_S):
            self.flush()
            if time.monotonic() - purged > PURGE_EVERY_S:
                purged = time.monotonic()
                self._quietly(self.purge)
        self.flush()

    def flush(self) -> None:
        rows = []
        while True:
            try:
                rows.append(self.queue.get_nowait())
            except queue.Empty:
                break
        if rows:
            self._quietly(lambda: self._insert(rows))
        if self.dropped:
            log.warning("audit events not written to the table (queue full); the audit file has them",
                        extra={"dropped": self.dropped})
            self.dropped = 0

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as db:
            db.execute(insert(audit_events), rows)

    def purge(self) -> None:
        """In chunks, each its own short transaction: a day of a busy service is millions of rows, and one
        huge delete would hold SQLite's write lock (and every registration) for its whole duration."""
        cutoff = now_iso(-self.retention_days * 86400.0)
        old = select(audit_events.c.id).where(audit_events.c.at < cutoff).limit(PURGE_CHUNK)
        while True:
            with self.engine.begin() as db:
                ids = [row.id for row in db.execute(old)]
                if ids:
                    db.execute(delete(audit_events).where(audit_events.c.id.in_(ids)))
            if len(ids) < PURGE_CHUNK:
                return

    def _quietly(self, write: Any) -> None:
        """The store is down: the events stay in the file; the table misses them (said in the log)."""
        try:
            write()
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError):
            log.warning("could not write audit events to the table; the audit file has them")

    def queued(self) -> int:
        return self.queue.qsize()

    def page(self, *, limit: int, before: int | None = None, person_id: str | None = None,
             actor_id: str | None = None, op: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        return audit_page(self.engine, limit=limit, before=before, person_id=person_id, actor_id=actor_id, op=op,
                          since=since)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        super().close()


@db_errors
def audit_page(engine: Engine, *, limit: int, before: int | None = None, person_id: str | None = None,
               actor_id: str | None = None, op: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
    """Newest first, keyset by row id: a page costs the same at any depth of a long trail."""
    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    for column, value in ((audit_events.c.person_id, person_id), (audit_events.c.actor, actor_id),
                          (audit_events.c.op, op)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if before is not None:
        query = query.where(audit_events.c.id < before)
    with engine.connect() as db:
        return [dict(row._mapping) for row in db.execute(query)]
