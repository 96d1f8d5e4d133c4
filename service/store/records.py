"""The face store of record: persons and faces in SQL (the truth), person templates in a vector index (for
search). See ``store.base`` for the contract every store keeps.

Writes commit to the database first and update the index after: a person exists once the commit returns,
and the database's primary keys and transactions make that hold across workers and hosts. The index can lag
behind only when a process dies between the two; search filters its hits to persons that exist, and
``reconcile`` (run at start and by ``enroll repair``) adds what is missing, refreshes stale templates and
removes vectors without a record.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, insert, select, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from ..core.records import Candidate, NewFace, Person, StoredFace, now_iso
from ..errors import PersonExists
from . import rows, upkeep
from .base import missing_person
from .chroma_index import PersonIndex
from .database import db_errors, serialized
from .schema import faces, persons

log = logging.getLogger(__name__)
_blob, _vector = rows.blob, rows.vector


class RecordsStore:
    def __init__(self, engine: Engine, index: PersonIndex, model_id: str, dim: int, *, lock_file: Path,
                 index_files: Path | None = None, closers: Sequence[Callable[[], None]] = ()) -> None:
        self.engine, self.index, self.model_id, self.dim = engine, index, model_id, dim
        self.lock_file = lock_file
        self.index_files = index_files  # the embedded index's folder; None for a Chroma server
        self.erasures_marker = lock_file.parent / "erasures.pending"
        self._mine = persons.c.model_id == model_id
        self._closers = list(closers)

    def for_model(self, model_id: str, dim: int) -> RecordsStore:
        """The store of another model id on the same database and index client (``enroll reindex``)."""
        return RecordsStore(self.engine, PersonIndex(self.index.client, model_id, dim), model_id, dim,
                            lock_file=self.lock_file, index_files=self.index_files)

    def registration_lock(self) -> AbstractContextManager[Any]:
        return serialized(self.engine, self.lock_file)

    def close(self) -> None:
        """Release what this store opened (the database pool, the data dir lock); a ``for_model`` store
        shares them and closes nothing."""
        for close in self._closers:
            close()
        self._closers = []

    # --- reads ----------------------------------------------------------------------------------------

    @db_errors
    def heartbeat(self) -> bool:
        with self.engine.connect() as db:
            db.execute(select(1))
        return self.index.heartbeat()

    @db_errors
    def person_count(self) -> int:
        with self.engine.connect() as db:
            return int(db.scalar(select(func.count()).select_from(persons).where(self._mine)) or 0)

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
            count = select(func.count()).select_from(persons).where(self._mine)
            total = int(db.scalar(count if where is None else count.where(where)) or 0)
            if after is not None:
                later = tuple_(persons.c.created_at, persons.c.id) > tuple_(*after)
                where = later if where is None else and_(where, later)
            return rows.people(db, self.model_id, where, limit=limit, offset=offset), total

    @db_errors
    def faces_of(self, person_id: str, *, embeddings: bool = False) -> list[StoredFace]:
        with self.engine.connect() as db:
            rows = db.execute(select(faces.c.id, faces.c.created_at, faces.c.box, faces.c.quality,
                                     faces.c.embedding, faces.c.crop.is_not(None).label("has_crop"))
                              .where(faces.c.model_id == self.model_id, faces.c.person_id == person_id)
                              .order_by(faces.c.created_at, faces.c.id)).all()
        return [StoredFace(r.id, person_id, r.created_at, json.loads(r.box), json.loads(r.quality),
                           bool(r.has_crop), _vector(r.embedding) if embeddings else None) for r in rows]

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
        hits = [(pid, sim) for pid, sim in self.index.query(embedding, k + 1 if exclude else k) if pid != exclude]
        if not hits:
            return []
        with self.engine.connect() as db:  # only persons that exist: the index may lag after a crash
            names = dict(db.execute(select(persons.c.id, persons.c.name)
                                    .where(self._mine, persons.c.id.in_([pid for pid, _ in hits]))).all())
        found = [Candidate(pid, names[pid], sim) for pid, sim in hits if pid in names]
        return sorted(found, key=lambda c: -c.similarity)[:k]

    # --- writes: the database first, then the index ---------------------------------------------------

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
        except sa_exc.IntegrityError as exc:  # the primary key: one person per id, on every worker
            raise PersonExists(f"a person with id {person_id!r} already exists",
                               details={"person_id": person_id}) from exc
        self.index.upsert(person_id, template, stamp)
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
            self.index.upsert(person_id, template, changes["updated_at"])
        return person

    @db_errors
    def delete_person(self, person_id: str) -> Person:
        with self.engine.begin() as db:
            people = rows.people(db, self.model_id, persons.c.id == person_id)
            if not people:
                raise missing_person(person_id)
            db.execute(delete(faces).where(faces.c.model_id == self.model_id, faces.c.person_id == person_id))
            db.execute(delete(persons).where(self._mine, persons.c.id == person_id))
        self._note_erasure()
        self.index.delete([person_id])
        return people[0]

    @db_errors
    def add_faces(self, person_id: str, faces: list[NewFace], *,
                  template: np.ndarray | None = None) -> list[StoredFace]:
        stamp = now_iso()
        with self.engine.begin() as db:
            if not self._touch(db, person_id, template, stamp):
                raise missing_person(person_id)
            stored = rows.insert_faces(db, self.model_id, person_id, faces, stamp)
        if template is not None:
            self.index.upsert(person_id, template, stamp)
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
        self._note_erasure()
        if template is not None:
            self.index.upsert(person_id, template, stamp)
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
        with self.engine.begin() as db:
            db.execute(delete(faces).where(faces.c.model_id == self.model_id))
            db.execute(delete(persons).where(self._mine))
        self.index.drop()

    # --- keeping the index in step --------------------------------------------------------------------

    @db_errors
    def reconcile(self) -> dict[str, int]:
        """Make the index match the records (``upkeep.reconcile``)."""
        return upkeep.reconcile(self.engine, self.index, self.model_id)

    def _note_erasure(self) -> None:
        """Remember, across restarts, that erased bytes may still sit in the files until ``compact``."""
        self.erasures_marker.touch(mode=0o600, exist_ok=True)

    @property
    def erasures_pending(self) -> bool:
        return self.erasures_marker.exists()

    @db_errors
    def compact(self) -> dict[str, Any]:
        """Make erasures final on disk (``upkeep.compact``). Callers hold ``registration_lock``: no write may
        land in the old index while the new one is filled."""
        pending = self.erasures_pending
        result = upkeep.compact(self.engine, self.index, self.model_id, self.index_files)
        if pending:
            self.erasures_marker.unlink(missing_ok=True)
        return result

