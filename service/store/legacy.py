"""The upgrade path from the Chroma-only format to records in SQL with a Chroma index: ``enroll migrate``.

The old format kept everything in two collections per model id: ``persons-<model>`` (one record per person:
the template as its vector, name, metadata as JSON text and timestamps in its metadata) and ``faces-<model>``
(one record per face: the embedding, ``person_id``, box and quality as JSON text, the crop as a base64 JPEG
document). It is only ever read now, once, to move everyone into the records database."""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from ..core.records import NewFace, Person
from ..errors import PersonExists
from .chroma_client import safe_name, store_errors
from .chroma_index import PersonIndex
from .records import RecordsStore

PAGE = 100


def legacy_models(client: Any) -> dict[str, int]:
    """{model id: dim} of every Chroma-only store in this Chroma."""
    out = {}
    for collection in client.list_collections():
        name = getattr(collection, "name", collection)
        if name.startswith("persons-"):
            meta = client.get_collection(name).metadata or {}
            out[str(meta["model_id"])] = int(meta["dim"])
    return out


class LegacyReader:
    """One model id's persons and faces in the old format, read a page at a time."""

    def __init__(self, client: Any, model_id: str) -> None:
        self.client = client
        self.persons = client.get_collection(f"persons-{safe_name(model_id)}")
        self.faces = client.get_collection(f"faces-{safe_name(model_id)}")

    def people(self) -> Iterator[tuple[Person, np.ndarray]]:
        """Every person with their template (the store must not change meanwhile)."""
        offset = 0
        while True:
            got = self._page(offset)
            if not got["ids"]:
                return
            offset += len(got["ids"])
            for person_id, meta, vector in zip(got["ids"], got["metadatas"], got["embeddings"]):
                person = Person(person_id, meta.get("name", ""), json.loads(meta.get("metadata") or "{}"),
                                meta.get("created_at", ""), meta.get("updated_at", ""))
                yield person, np.asarray(vector, np.float32)

    @store_errors
    def _page(self, offset: int) -> Any:
        return self.persons.get(limit=PAGE, offset=offset, include=["metadatas", "embeddings"])

    @store_errors
    def faces_of(self, person_id: str) -> list[NewFace]:
        """The person's faces, oldest first, with their embeddings and crops."""
        got = self.faces.get(where={"person_id": person_id}, include=["metadatas", "documents", "embeddings"])
        rows = sorted(zip(got["ids"], got["metadatas"], got["documents"], got["embeddings"]),
                      key=lambda row: row[1]["created_at"])
        return [NewFace(np.asarray(vector, np.float32), json.loads(meta["box"]), json.loads(meta["quality"]),
                        base64.b64decode(crop) if crop else None, id=face_id)
                for face_id, meta, crop, vector in rows]

    @store_errors
    def drop(self) -> None:
        self.client.delete_collection(self.persons.name)  # persons first: no reader sees half of it
        self.client.delete_collection(self.faces.name)


def migrate_chroma_only(client: Any, engine: Engine, lock_file: Path,
                        report: Callable[[dict[str, Any]], None]) -> int:
    """Copy every person (faces, embeddings, crops, template, timestamps) into the records database and the
    index, then drop the old collections. Safe to run again after a crash: people already copied are
    skipped, and the old collections are dropped only when every person of a model is in the database."""
    moved = 0
    for model_id, dim in legacy_models(client).items():
        old = LegacyReader(client, model_id)
        new = RecordsStore(engine, PersonIndex(lambda: client, model_id, dim), model_id, dim,
                           lock_file=lock_file).open()
        for person, template in old.people():
            faces = old.faces_of(person.id)
            try:
                new.create_person(person_id=person.id, name=person.name, metadata=person.metadata, faces=faces,
                                  template=template, stamps=(person.created_at, person.updated_at))
                moved += 1
                report({"model": model_id, "person_id": person.id, "status": "migrated", "faces": len(faces)})
            except PersonExists:
                report({"model": model_id, "person_id": person.id, "status": "already there"})
        old.drop()
    return moved
