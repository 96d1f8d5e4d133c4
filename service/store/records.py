"""The face store of record: persons and faces in SQL (the truth), person templates in a vector index (for
search). See ``core.ports.FaceStore`` for the contract every store keeps.

Commit means done. Every write that changes what the index must hold also writes an outbox entry (``person X
changed``) and the gallery's size in the same transaction; after the commit the outbox is applied to the
index at once, and if the index is down or full, again by the upkeep thread of any instance and at start
(``apply_pending``). An index failure after the commit is therefore never an error for the client: a retry
would enrol the same face twice. Until an entry lands, search scores the person exactly from the records
(``nearest_persons``), so identify and the duplicate check see everyone who is committed.

Which Chroma collection is the index now is the ``galleries`` row (generations; ``upkeep.rebuild``): every
search reads it, and a search that finds its collection dropped reads it again.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..core.records import Candidate, IndexState, NewFace, Person, StoredFace, now_iso
from ..errors import DuplicatePhoto, PersonExists, StoreUnavailable
from . import rows, upkeep
from .base import missing_person
from .chroma_index import Centre, GenerationGone, IndexDiskFull, PersonIndex
from .database import INDEX_KEY, db_errors, serialized
from .schema import faces, galleries, index_outbox, persons

log = logging.getLogger(__name__)
_blob, _vector = rows.blob, rows.vector


@dataclass(frozen=True)
class Gallery:
    """The ``galleries`` row of one model id."""
    persons: int
    generation: int
    collection: str
    applied_seq: int
    building_seq: int | None
    retired: str | None
    retired_at: str | None


@dataclass(frozen=True)
class StoreLimits:
    # Outbox entries not yet in the index that a search still scores exactly; past this the index is too far
    # behind to search honestly, and search and registration answer 503 until it catches up.
    max_pending: int = 2000
    # How long a dropped generation stays after a switch: longer than any search can run (its deadline).
    retire_grace_s: float = 60.0
    # How long a request waits for a section another process holds (registration, index upkeep).
    lock_wait_s: float = 15.0
    # How long an applied outbox entry still makes its person a search candidate, scored from the records: an
    # index write that returned is not promised to be visible to the very next search (a failure seen once
    # under load, right after a rebuild), and the duplicate check must see a person the moment they commit.
    recent_s: float = 10.0


class RecordsStore:
    def __init__(self, engine: Engine, index: PersonIndex, model_id: str, dim: int, *, lock_file: Path,
                 limits: StoreLimits = StoreLimits(), closers: Sequence[Callable[[], None]] = ()) -> None:
        self.engine, self.index, self.model_id, self.dim = engine, index, model_id, dim
        self.lock_file, self.limits = lock_file, limits
        self.index_lock_file = lock_file.parent / "index.lock"
        self.erasures_marker = lock_file.parent / "erasures.pending"
        self._mine = persons.c.model_id == model_id
        self._closers = list(closers)
        # Per thread: inside the registration section, and whether a commit there left the index to update.
        self._section = threading.local()

    def for_model(self, model_id: str, dim: int, centre: Centre | None = None) -> RecordsStore:
        """The store of another model id on the same database and index client (``enroll reindex``)."""
        other = RecordsStore(self.engine, self.index.for_model(model_id, dim, centre), model_id, dim,
                             lock_file=self.lock_file, limits=self.limits)
        other.open()
        return other

    def open(self) -> RecordsStore:
        """Make sure the gallery row and its current collection exist, and bring the index up to date with
        what was committed before the last stop: only the outbox (bounded by what changed), never a scan of
        everyone. Run at every start."""
        self._ensure_gallery()
        gallery = self.gallery()
        self.index.create(gallery.collection)
        self.apply_pending()
        upkeep.drop_retired(self, force=False)
        return self

    @contextlib.contextmanager
    def registration_lock(self) -> Iterator[None]:
        """The section in which a registration checks for duplicates and writes, one at a time on every
        worker. The index write its commit needs is made once the section is released, not inside it: it is
        the slowest step of a registration (an embedded Chroma upsert waits ~40 ms for ~7 ms of CPU) and
        needs no serialising, since a search scores everyone committed but not yet indexed from the records
        (the outbox). Holding it inside made the section ~70 ms, which capped a bulk import at about 15
        registrations a second, whatever the cores. The request still returns only after the write (or its
        hand-over to the upkeep thread), as before; writes that land together go to the index as one batch."""
        outer = not getattr(self._section, "depth", 0)
        self._section.depth = getattr(self._section, "depth", 0) + 1
        try:
            with serialized(self.engine, self.lock_file, wait_s=self.limits.lock_wait_s):
                yield
        finally:
            self._section.depth -= 1
            if outer and getattr(self._section, "dirty", False):
                self._section.dirty = False
                self._apply_after_commit()

    def index_lock(self, wait_s: float | None = None) -> AbstractContextManager[Any]:
        """The section that writes the index: applying the outbox and switching generations, one process at
        a time, so an older template never lands after a newer one."""
        return serialized(self.engine, self.index_lock_file, key=INDEX_KEY,
                          wait_s=self.limits.lock_wait_s if wait_s is None else wait_s)

    def close(self) -> None:
        """Release what this store opened (the database pool, the data dir lock); a ``for_model`` store
        shares them and closes nothing."""
        for close in self._closers:
            close()
        self._closers = []

    # --- the gallery row --------------------------------------------------------------------------------

    def _ensure_gallery(self) -> None:
        with self.engine.begin() as db:
            if db.scalar(select(galleries.c.model_id).where(galleries.c.model_id == self.model_id)) is not None:
                return
        try:
            with self.engine.begin() as db:
                count = int(db.scalar(select(func.count()).select_from(persons).where(self._mine)) or 0)
                db.execute(insert(galleries).values(model_id=self.model_id, persons=count, generation=1,
                                                    collection=self.index.name_of(1), applied_seq=0))
                if count:  # people of this model without a gallery row: index them all
                    db.execute(insert(index_outbox).from_select(
                        ["model_id", "person_id", "at"],
                        select(persons.c.model_id, persons.c.id, persons.c.updated_at).where(self._mine)))
        except sa_exc.IntegrityError:
            pass  # another instance created it first

    def _gallery(self, db: Connection) -> Gallery:
        row = db.execute(select(galleries).where(galleries.c.model_id == self.model_id)).first()
        if row is None:  # dropped (``drop``): an empty gallery with no index at all
            return Gallery(0, 0, "", 0, None, None, None)
        return Gallery(int(row.persons), int(row.generation), row.collection, int(row.applied_seq),
                       None if row.building_seq is None else int(row.building_seq), row.retired, row.retired_at)

    @db_errors
    def gallery(self) -> Gallery:
        with self.engine.connect() as db:
            return self._gallery(db)

    def _count(self, db: Connection, change: int) -> None:
        db.execute(update(galleries).where(galleries.c.model_id == self.model_id)
                   .values(persons=galleries.c.persons + change))

    def _mark(self, db: Connection, *person_ids: str) -> None:
        """Outbox entries: these persons' index entries must be made to match the records."""
        stamp = now_iso()
        db.execute(insert(index_outbox), [{"model_id": self.model_id, "person_id": pid, "at": stamp}
                                          for pid in person_ids])

    # --- reads ----------------------------------------------------------------------------------------

    @db_errors
    def heartbeat(self) -> bool:
        with self.engine.connect() as db:
            gallery = self._gallery(db)
        if not gallery.collection:
            return True
        try:
            return self.index.heartbeat(gallery.collection)
        except GenerationGone:
            return self.index.heartbeat(self.gallery().collection)

    def load_index(self, timeout_s: float) -> float | None:
        """Read the current generation's index into memory, for a serving process's start: the seconds it took,
        or None with nobody indexed. The first request then does not pay for it, nor answer 503 while a big
        index comes off a cold disk."""
        gallery = self.gallery()
        if not gallery.collection or not gallery.persons:
            return None
        started = time.monotonic()
        try:
            self.index.load(gallery.collection, timeout_s)
        except GenerationGone:  # switched by another instance meanwhile: load the new one
            self.index.load(self.gallery().collection, timeout_s)
        return time.monotonic() - started

    def person_count(self) -> int:
        """The maintained count: one row read, whatever the gallery's size."""
        return self.gallery().persons

    @db_errors
    def face_count(self) -> int:
        with self.engine.connect() as db:
            return int(db.scalar(select(func.count()).select_from(faces).where(faces.c.model_id == self.model_id))
                       or 0)

    @db_errors
    def get_person(self, person_id: str) -> Person | None:
        with self.engine.connect() as db:
            people = rows.people(db, self.model_id, persons.c.id == person_id)
        return people[0] if people else None

    @db_errors
    def list_persons(self, *, limit: int, offset: int = 0, q: str | None = None,
                     after: tuple[str, str] | None = None) -> tuple[list[Person], int]:
        where = persons.c.name_key.contains(q.lower(), autoescape=True) if q else None
        with self.engine.connect() as db:
            if where is None:
                total = self._gallery(db).persons
            else:
                total = int(db.scalar(select(func.count()).select_from(persons).where(self._mine, where)) or 0)
            if after is not None:
                later = tuple_(persons.c.created_at, persons.c.id) > tuple_(*after)
                where = later if where is None else and_(where, later)
            return rows.people(db, self.model_id, where, limit=limit, offset=offset), total

    @db_errors
    def faces_of(self, person_id: str, *, embeddings: bool = False) -> list[StoredFace]:
        with self.engine.connect() as db:
            found = db.execute(select(faces.c.id, faces.c.created_at, faces.c.box, faces.c.quality,
                                      faces.c.embedding, faces.c.crop.is_not(None).label("has_crop"),
                                      faces.c.source_sha256)
                               .where(faces.c.model_id == self.model_id, faces.c.person_id == person_id)
                               .order_by(faces.c.created_at, faces.c.id)).all()
        return [StoredFace(r.id, person_id, r.created_at, json.loads(r.box), json.loads(r.quality),
                           bool(r.has_crop), _vector(r.embedding) if embeddings else None, r.source_sha256)
                for r in found]

    @db_errors
    def face_crop(self, person_id: str, face_id: str) -> bytes | None:
        with self.engine.connect() as db:
            crop = db.scalar(select(faces.c.crop).where(faces.c.id == face_id, faces.c.person_id == person_id,
                                                        faces.c.model_id == self.model_id))
        return bytes(crop) if crop is not None else None

    @db_errors
    def template_of(self, person_id: str) -> np.ndarray:
        with self.engine.connect() as db:
            blob = db.scalar(select(persons.c.template).where(self._mine, persons.c.id == person_id))
        if blob is None:
            raise missing_person(person_id)
        return _vector(blob)

    @db_errors
    def nearest_persons(self, embedding: np.ndarray, k: int, *, exclude: str | None = None) -> list[Candidate]:
        """The index's nearest persons plus everyone committed but not yet indexed (the outbox), all scored
        on their templates as the records hold them: a stale or missing index entry can cost recall for the
        moment it takes to apply, never a wrong score, and a deleted person is never returned."""
        gallery, pending = self._search_state()
        if not gallery.collection:
            return []
        try:
            hits = self.index.query(gallery.collection, embedding, k + 1 + len(pending))
        except GenerationGone:  # switched and dropped since the row was read: follow it
            gallery, pending = self._search_state()
            hits = self.index.query(gallery.collection, embedding, k + 1 + len(pending))
        wanted = ({pid for pid, _ in hits} | pending) - {exclude}
        if not wanted:
            return []
        # each candidate's face count in the same statement (an index range count per row, on ix_faces_person):
        # identify's threshold depends on how many photos the template holds
        photos = (select(func.count()).select_from(faces)
                  .where(faces.c.model_id == persons.c.model_id, faces.c.person_id == persons.c.id)
                  .correlate(persons).scalar_subquery())
        with self.engine.connect() as db:
            found = db.execute(select(persons.c.id, persons.c.name, persons.c.template, photos.label("photos"))
                               .where(self._mine, persons.c.id.in_(sorted(wanted)))).all()
        probe = np.asarray(embedding, np.float32)
        scored = [Candidate(r.id, r.name, float(_vector(r.template) @ probe), int(r.photos)) for r in found]
        return sorted(scored, key=lambda c: -c.similarity)[:k]

    @db_errors
    def index_lag(self) -> int:
        """Outbox entries the index has not applied yet (0 when it is up to date)."""
        return self.index_state().lag

    @db_errors
    def index_state(self) -> IndexState:
        with self.engine.connect() as db:
            gallery = self._gallery(db)
            lag = int(db.scalar(select(func.count()).select_from(index_outbox).where(
                index_outbox.c.model_id == self.model_id, index_outbox.c.id > gallery.applied_seq)) or 0)
        return IndexState(generation=gallery.generation, lag=lag, centred=self.index.centre is not None)

    def _search_state(self) -> tuple[Gallery, set[str]]:
        """The current generation and who is committed but not yet in it, read together."""
        with self.engine.connect() as db:
            gallery = self._gallery(db)
            return gallery, self._pending_ids(db, gallery.applied_seq)

    def _pending_ids(self, db: Connection, applied_seq: int) -> set[str]:
        """Who is committed but not yet applied to the index, or applied within ``recent_s``."""
        found = db.execute(select(index_outbox.c.person_id).where(
            index_outbox.c.model_id == self.model_id,
            or_(index_outbox.c.id > applied_seq, index_outbox.c.at >= now_iso(-self.limits.recent_s)))
            .limit(self.limits.max_pending + 1)).scalars().all()
        if len(found) > self.limits.max_pending:
            raise StoreUnavailable("the vector index is too far behind the records to search; it catches up "
                                   "once it is reachable again", details={"op": "search", "pending": len(found)})
        return set(found)

    # --- writes: records, count and outbox in one transaction; then the index ---------------------------

    @db_errors
    def create_person(self, *, person_id: str, name: str, metadata: dict[str, Any], faces: list[NewFace],
                      template: np.ndarray, stamps: tuple[str, str] | None = None) -> tuple[Person, list[StoredFace]]:
        """``stamps`` (created, updated) keep a migrated person's history; new persons are stamped now."""
        created, stamp = stamps or (now_iso(),) * 2
        try:
            with self.engine.begin() as db:
                db.execute(insert(persons).values(
                    model_id=self.model_id, id=person_id, name=name, name_key=name.lower(),
                    metadata=json.dumps(metadata), created_at=created, updated_at=stamp, template=_blob(template)))
                stored = rows.insert_faces(db, self.model_id, person_id, faces, created)
                self._count(db, +1)
                self._mark(db, person_id)
        except sa_exc.IntegrityError as exc:  # the primary key: one person per id, on every worker
            raise PersonExists(f"a person with id {person_id!r} already exists",
                               details={"person_id": person_id}) from exc
        self._apply_after_commit()
        return Person(person_id, name, metadata, created, stamp, face_count=len(stored)), stored

    @db_errors
    def update_person(self, person_id: str, *, name: str | None = None, metadata: dict[str, Any] | None = None,
                      template: np.ndarray | None = None) -> Person:
        changes: dict[str, Any] = {"updated_at": now_iso()}
        if name is not None:
            changes.update(name=name, name_key=name.lower())
        if metadata is not None:
            changes["metadata"] = json.dumps(metadata)
        if template is not None:
            changes["template"] = _blob(template)
        with self.engine.begin() as db:
            if not db.execute(update(persons).where(self._mine, persons.c.id == person_id).values(**changes)).rowcount:
                raise missing_person(person_id)
            (person,) = rows.people(db, self.model_id, persons.c.id == person_id)
            if template is not None:
                self._mark(db, person_id)
        if template is not None:
            self._apply_after_commit()
        return person

    @db_errors
    def delete_person(self, person_id: str) -> Person:
        with self.engine.begin() as db:
            people = rows.people(db, self.model_id, persons.c.id == person_id)
            if not people:
                raise missing_person(person_id)
            db.execute(delete(faces).where(faces.c.model_id == self.model_id, faces.c.person_id == person_id))
            db.execute(delete(persons).where(self._mine, persons.c.id == person_id))
            self._count(db, -1)
            self._mark(db, person_id)
        self._note_erasure()
        self._apply_after_commit()
        return people[0]

    @db_errors
    def add_faces(self, person_id: str, faces: list[NewFace], *,
                  template: np.ndarray | None = None) -> list[StoredFace]:
        stamp = now_iso()
        try:
            with self.engine.begin() as db:
                if not self._touch(db, person_id, template, stamp):
                    raise missing_person(person_id)
                stored = rows.insert_faces(db, self.model_id, person_id, faces, stamp)
                if template is not None:
                    self._mark(db, person_id)
        except sa_exc.IntegrityError as exc:  # ux_faces_person_source: a retried request after a lost answer
            raise DuplicatePhoto(f"person {person_id!r} already has a face from this photo",
                                 details={"person_id": person_id}) from exc
        if template is not None:
            self._apply_after_commit()
        return stored

    @db_errors
    def delete_face(self, person_id: str, face_id: str, *, template: np.ndarray | None = None) -> bool:
        stamp = now_iso()
        with self.engine.begin() as db:
            gone = db.execute(delete(faces).where(faces.c.id == face_id, faces.c.person_id == person_id,
                                                  faces.c.model_id == self.model_id)).rowcount
            if not gone:
                return False
            self._touch(db, person_id, template, stamp)
            if template is not None:
                self._mark(db, person_id)
        self._note_erasure()
        if template is not None:
            self._apply_after_commit()
        return True

    def _touch(self, db: Connection, person_id: str, template: np.ndarray | None, stamp: str) -> bool:
        """New ``updated_at`` (and template) in the same transaction as the faces change; False if no such
        person. The row lock also orders concurrent changes to one person."""
        changes: dict[str, Any] = {"updated_at": stamp}
        if template is not None:
            changes["template"] = _blob(template)
        return bool(db.execute(update(persons).where(self._mine, persons.c.id == person_id).values(**changes))
                    .rowcount)

    @db_errors
    def drop(self) -> None:
        """Erase this model id's whole store: records, outbox, gallery row and every index generation (the
        store is empty afterwards; ``open`` starts it again)."""
        with self.index_lock():
            with self.engine.begin() as db:
                db.execute(delete(faces).where(faces.c.model_id == self.model_id))
                db.execute(delete(persons).where(self._mine))
                db.execute(delete(index_outbox).where(index_outbox.c.model_id == self.model_id))
                db.execute(delete(galleries).where(galleries.c.model_id == self.model_id))
            for name in self.index.names():
                self.index.drop(name)

    # --- keeping the index in step --------------------------------------------------------------------

    def _apply_after_commit(self) -> None:
        """The commit is the answer: an index that is down, full or busy now is the upkeep thread's to catch
        up with (and search scores pending persons exactly meanwhile), never the client's error. Inside the
        registration section it is left for the section's end (``registration_lock``)."""
        if getattr(self._section, "depth", 0):
            self._section.dirty = True
            return
        try:
            self.apply_pending(wait_s=2.0)
        except StoreUnavailable as exc:
            log.warning("index behind the records; the upkeep thread retries", extra={"code": exc.code})

    @db_errors
    def apply_pending(self, wait_s: float | None = None, batch: int = 500) -> int:
        """Apply the outbox to the current generation: each entry's person as the records hold them now
        (their template, or a deletion). How many entries were applied."""
        done = 0
        with self.index_lock(wait_s):
            while True:
                with self.engine.connect() as db:
                    gallery = self._gallery(db)
                    entries = db.execute(select(index_outbox.c.id, index_outbox.c.person_id)
                                         .where(index_outbox.c.model_id == self.model_id,
                                                index_outbox.c.id > gallery.applied_seq)
                                         .order_by(index_outbox.c.id).limit(batch)).all()
                applying = bool(entries) and bool(gallery.collection)
                last = int(entries[-1].id) if applying else gallery.applied_seq
                if applying:
                    self.sync(gallery.collection, {e.person_id for e in entries})
                with self.engine.begin() as db:
                    if applying:
                        db.execute(update(galleries).where(galleries.c.model_id == self.model_id,
                                                           galleries.c.applied_seq < last).values(applied_seq=last))
                    # Applied entries go once they are no longer recent (``recent_s``); a rebuild's catch-up
                    # still needs those after its snapshot; nothing unapplied is ever deleted.
                    keep_from = last if gallery.building_seq is None else min(last, gallery.building_seq)
                    db.execute(delete(index_outbox).where(index_outbox.c.model_id == self.model_id,
                                                          index_outbox.c.id <= keep_from,
                                                          index_outbox.c.at < now_iso(-self.limits.recent_s)))
                if not applying:
                    return done
                done += len(entries)

    def sync(self, collection: str, person_ids: set[str], chunk: int = 100) -> None:
        """Make ``collection`` hold these persons as the records hold them now, a request-sized chunk at a
        time (each index call has a request's deadline)."""
        ordered = sorted(person_ids)
        for start in range(0, len(ordered), chunk):
            part = ordered[start:start + chunk]
            with self.engine.connect() as db:
                found = dict(db.execute(select(persons.c.id, persons.c.template)
                                        .where(self._mine, persons.c.id.in_(part))).all())
            self.index.upsert(collection, [(pid, _vector(blob)) for pid, blob in sorted(found.items())])
            self.index.erase(collection, [pid for pid in part if pid not in found])

    @db_errors
    def reconcile(self) -> dict[str, int]:
        """Make the index match the records (``upkeep.reconcile``): a full scan, on demand only."""
        return upkeep.reconcile(self)

    def _note_erasure(self) -> None:
        """Remember, across restarts, that erased bytes may still sit in the files until ``compact``."""
        self.erasures_marker.touch(mode=0o600, exist_ok=True)

    @property
    def erasures_pending(self) -> bool:
        return self.erasures_marker.exists()

    @db_errors
    def compact(self) -> dict[str, Any]:
        """Make erasures final on disk without a rebuild (``upkeep.compact``)."""
        pending = self.erasures_pending
        result = upkeep.compact(self)
        if pending:
            self.erasures_marker.unlink(missing_ok=True)
        return result

    @db_errors
    def rebuild(self, report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """A fresh generation of the index from the records, switched to while everything keeps serving
        (``upkeep.rebuild``)."""
        return upkeep.rebuild(self, report)

    def upkeep(self) -> None:
        """What the upkeep thread does every few seconds: apply what the outbox still holds, recover an
        embedded index that failed, drop generations no search can still use."""
        try:
            self.apply_pending(wait_s=0.5)
        except IndexDiskFull:  # refused before Chroma wrote: nothing to recover, the outbox waits for room
            raise
        except StoreUnavailable:
            self.index.recover()
            raise
        upkeep.drop_retired(self, force=False)
