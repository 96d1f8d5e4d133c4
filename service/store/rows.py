"""Rows of the records tables to and from domain records: the queries the records store shares."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlalchemy import and_, func, insert, select
from sqlalchemy.engine import Connection

from ..core.records import NewFace, Person, StoredFace
from .schema import faces, persons


def blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, "<f4").tobytes()


def vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<f4").astype(np.float32)


def people(db: Connection, model_id: str, where: Any = None, *, limit: int | None = None,
           offset: int = 0) -> list[Person]:
    """Persons of ``model_id`` in (created_at, id) order, with their face counts (one query for the page)."""
    query = select(persons.c.id, persons.c.name, persons.c.metadata, persons.c.created_at,
                   persons.c.updated_at).where(persons.c.model_id == model_id)
    if where is not None:
        query = query.where(where)
    query = query.order_by(persons.c.created_at, persons.c.id).offset(offset)
    rows = db.execute(query if limit is None else query.limit(limit)).all()
    if not rows:
        return []
    counted = db.execute(select(faces.c.person_id, func.count())
                         .where(and_(faces.c.model_id == model_id,
                                     faces.c.person_id.in_([r.id for r in rows])))
                         .group_by(faces.c.person_id)).all()
    counts: dict[str, int] = {pid: int(n) for pid, n in counted}
    return [Person(r.id, r.name, json.loads(r.metadata), r.created_at, r.updated_at, int(counts.get(r.id, 0)))
            for r in rows]


def insert_faces(db: Connection, model_id: str, person_id: str, new: list[NewFace],
                 stamp: str) -> list[StoredFace]:
    if new:
        db.execute(insert(faces), [
            {"id": f.id, "model_id": model_id, "person_id": person_id, "created_at": stamp,
             "box": json.dumps(f.box), "quality": json.dumps(f.quality), "embedding": blob(f.embedding),
             "crop": f.crop_jpeg, "source_sha256": f.source_sha256} for f in new])
    return [StoredFace(f.id, person_id, stamp, f.box, f.quality, bool(f.crop_jpeg), source_sha256=f.source_sha256)
            for f in new]
