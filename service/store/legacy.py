"""The upgrade path from the Chroma-only format (every record in ``persons-<model>`` / ``faces-<model>``
collections, ``ChromaStore``) to records in SQL with a Chroma index: ``enroll migrate``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ..core.ports import every_person
from ..core.records import NewFace
from ..errors import PersonExists
from .chroma import ChromaStore
from .chroma_index import PersonIndex
from .records import RecordsStore


def legacy_models(client: Any) -> dict[str, int]:
    """{model id: dim} of every Chroma-only store in this Chroma."""
    out = {}
    for collection in client.list_collections():
        name = getattr(collection, "name", collection)
        if name.startswith("persons-"):
            meta = client.get_collection(name).metadata or {}
            out[str(meta["model_id"])] = int(meta["dim"])
    return out


def migrate_chroma_only(client: Any, engine: Engine, lock_file: Path,
                        report: Callable[[dict[str, Any]], None]) -> int:
    """Copy every person (faces, embeddings, crops, template, timestamps) into the records database and the
    index, then drop the old collections. Safe to run again after a crash: people already copied are
    skipped, and the old collections are dropped only when every person of a model is in the database."""
    moved = 0
    for model_id, dim in legacy_models(client).items():
        old = ChromaStore(client, model_id, dim)
        new = RecordsStore(engine, PersonIndex(lambda: client, model_id, dim), model_id, dim,
                           lock_file=lock_file).open()
        for person in every_person(old):
            faces = [NewFace(f.embedding, f.box, f.quality, old.face_crop(person.id, f.id), id=f.id)
                     for f in old.faces_of(person.id, embeddings=True) if f.embedding is not None]
            try:
                new.create_person(person_id=person.id, name=person.name, metadata=person.metadata, faces=faces,
                                  template=old.template_of(person.id),
                                  stamps=(person.created_at, person.updated_at))
                moved += 1
                report({"model": model_id, "person_id": person.id, "status": "migrated", "faces": len(faces)})
            except PersonExists:
                report({"model": model_id, "person_id": person.id, "status": "already there"})
        old.drop()
    return moved
