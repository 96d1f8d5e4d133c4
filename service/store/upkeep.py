"""Keeping the index in step with the records: generations (a rebuild every instance follows), the full
reconcile on demand, and making erasure final on disk at a cost that does not grow with the gallery."""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from ..core.records import now_iso
from ..errors import StoreUnavailable
from .chroma_client import vacuum_files
from .database import REBUILD_KEY, serialized
from .rows import vector
from .schema import galleries, index_outbox, persons

if TYPE_CHECKING:
    from .records import RecordsStore

log = logging.getLogger(__name__)
STALE_BUILD_S = 24 * 3600  # a rebuild that has not switched after this long died: its leftovers go


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return (datetime.now(UTC) - then).total_seconds()


def rebuild(store: RecordsStore, report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """``_rebuild``, one at a time on every host: a second rebuild while one runs is refused at once (a lock
    its holder's death releases, so a rebuild killed half-way blocks nothing)."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(serialized(store.engine, store.lock_file.parent / "rebuild.lock", key=REBUILD_KEY,
                                          wait_s=0.0))
        except StoreUnavailable as exc:
            raise StoreUnavailable("another rebuild of this index is running; wait for it to finish",
                                   details={"model_id": store.model_id}) from exc
        return _rebuild(store, report)


def _rebuild(store: RecordsStore, report: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """Fill the next generation from the records beside the current one, then switch to it in one
    transaction; the old one is dropped once no search can still be using it. Registrations, deletions and
    searches go on throughout: the snapshot is read at a known outbox position (under the registration
    lock, so no write is half-way), and every change after it is replayed into the new generation before
    the switch. Nothing is held for the length of the fill."""
    started = time.monotonic()
    drop_retired(store, force=True)  # at most one retired generation at a time
    with store.registration_lock(), store.index_lock():
        with store.engine.begin() as db:
            gallery = store._gallery(db)
            since = int(db.scalar(select(func.max(index_outbox.c.id))
                                  .where(index_outbox.c.model_id == store.model_id)) or gallery.applied_seq)
            db.execute(update(galleries).where(galleries.c.model_id == store.model_id)
                       .values(building_seq=since, building_at=now_iso()))
        generation = gallery.generation + 1
        name = store.index.name_of(generation)
        if name in store.index.names():
            store.index.drop(name)  # left by a rebuild that died
        store.index.create(name)
        snapshot = store.engine.connect()
        if store.engine.dialect.name == "postgresql":
            snapshot = snapshot.execution_options(isolation_level="REPEATABLE READ")
        rows = snapshot.execution_options(yield_per=1000).execute(
            select(persons.c.id, persons.c.template).where(persons.c.model_id == store.model_id))
        first = rows.fetchmany(1000)  # the snapshot is taken now, while no write is in flight
    try:
        filled = store.index.fill(name, ((r.id, vector(r.template)) for r in first))

        def rest() -> Any:
            for row in rows:
                yield row.id, vector(row.template)
        filled += store.index.fill(name, _progress(rest(), report, filled))
    finally:
        snapshot.close()
    with store.index_lock():
        with store.engine.connect() as db:
            changed = db.execute(select(index_outbox.c.id, index_outbox.c.person_id)
                                 .where(index_outbox.c.model_id == store.model_id, index_outbox.c.id > since)).all()
        store.sync(name, {r.person_id for r in changed})
        upto = max([since] + [int(r.id) for r in changed])
        with store.engine.begin() as db:
            db.execute(update(galleries).where(galleries.c.model_id == store.model_id).values(
                generation=generation, collection=name, applied_seq=upto, building_seq=None, building_at=None,
                retired=gallery.collection, retired_at=now_iso()))
    result = {"model": store.model_id, "generation": generation, "collection": name, "persons": filled,
              "replayed": len(changed), "seconds": round(time.monotonic() - started, 2)}
    log.info("index rebuilt", extra=result)
    return result


def _progress(entries: Any, report: Callable[[dict[str, Any]], None] | None, done: int) -> Any:
    for entry in entries:
        yield entry
        done += 1
        if report is not None and done % 10_000 == 0:
            report({"indexed": done})


def drop_retired(store: RecordsStore, *, force: bool) -> list[str]:
    """Drop the generation a switch left behind once its grace has passed (``force``: now), the leftovers of
    a rebuild that died, and any other collection of this model that is not in use. What was dropped."""
    gallery = store.gallery()
    keep = {gallery.collection}
    clear: dict[str, Any] = {}
    if gallery.retired:
        if force or _age_s(gallery.retired_at) >= store.limits.retire_grace_s:
            clear.update(retired=None, retired_at=None)
        else:
            keep.add(gallery.retired)
    if gallery.building_seq is not None:
        with store.engine.connect() as db:
            building_at = db.scalar(select(galleries.c.building_at).where(galleries.c.model_id == store.model_id))
        if _age_s(building_at) >= STALE_BUILD_S:
            clear.update(building_seq=None, building_at=None)
        else:
            keep.add(store.index.name_of(gallery.generation + 1))
    if clear:
        with store.engine.begin() as db:
            db.execute(update(galleries).where(galleries.c.model_id == store.model_id).values(**clear))
    dropped = sorted(store.index.names() - keep)
    for name in dropped:
        store.index.drop(name)
    if dropped:
        log.info("index generations dropped", extra={"model": store.model_id, "dropped": dropped})
    return dropped


def reconcile(store: RecordsStore) -> dict[str, int]:
    """Make the current generation hold exactly the records: add the missing, remove vectors without a
    record, apply the outbox. A full scan of both, on demand only (``enroll repair``): the outbox keeps the
    index in step, so nothing at start or per request needs it."""
    store.apply_pending()
    gallery = store.gallery()
    indexed = store.index.ids(gallery.collection)
    with store.engine.connect() as db:
        known = set(db.execute(select(persons.c.id).where(persons.c.model_id == store.model_id)).scalars())
    missing, orphans = known - indexed, indexed - known
    with store.index_lock():
        store.sync(gallery.collection, missing | orphans)  # an orphan has no record: sync erases it
    fixed = {"added": len(missing), "refreshed": 0, "removed": len(orphans)}
    if missing or orphans:
        log.warning("index reconciled with the records", extra=fixed)
    return fixed


def compact(store: RecordsStore) -> dict[str, Any]:
    """Make erasures final on disk, without a rebuild. The records: SQLite zeroes deleted rows
    (``secure_delete``) and its write-ahead log, which still holds the pages as they were, is checkpointed and
    truncated; PostgreSQL is vacuumed (which frees, but does not zero). The index: every erased vector was
    overwritten with noise before its deletion (``PersonIndex.erase``); the embedded index is then saved and
    Chroma's own database vacuumed while Chroma has it closed (``PersonIndex.flush_and_vacuum``). Costs what
    the files weigh, never a pass over the gallery's vectors."""
    started = time.monotonic()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        if store.engine.dialect.name == "sqlite":
            db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            db.exec_driver_sql("SET statement_timeout = 0")
            for table in ("persons", "faces", "index_outbox"):
                db.exec_driver_sql(f"VACUUM {table}")
    collection = store.gallery().collection
    if store.index.files is not None and collection:
        with store.index_lock():
            store.index.flush_and_vacuum(collection, vacuum_files)
    seconds = round(time.monotonic() - started, 2)
    log.info("compacted", extra={"model_id": store.model_id, "seconds": seconds})
    return {"model": store.model_id, "seconds": seconds}
