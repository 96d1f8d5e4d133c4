"""The face store on Chroma: embedded (``PersistentClient`` in the data dir) or a ``chroma run`` server.

Two collections per model id, both in cosine space: ``faces-<model>`` holds one record per face (embedding,
``person_id``, quality, and the crop as a base64 JPEG document, so a crop lives and dies with its embedding);
``persons-<model>`` one record per person, whose vector is the template the recognizer gives (name, metadata,
timestamps; the document is the lower-cased name, for substring search). 1:N search is one query on it.

Visibility is what makes writes atomic as clients see them: a person exists once its person record exists.
Registration writes the faces first and the person record last; deletion removes the person record first.
Search runs on person records only, so a half-done write is never seen, and a person id that is reused gets
its stale faces swept before new ones are written.

Failures are mapped explicitly (``chroma_client.store_errors``): a server that cannot be reached, a timeout or an I/O
error is ``StoreUnavailable`` (503); anything else is our bug and propagates.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from ..core.records import Candidate, NewFace, Person, StoredFace, now_iso
from ..errors import PersonExists
from .base import NothingToKeepUp, missing_person
from .chroma_client import model_collection, open_client, safe_name, store_errors
from .lock import DataDirLock

log = logging.getLogger(__name__)


class ChromaStore(NothingToKeepUp):
    """Persons and faces of one model id (see ``core.ports.FaceStore`` for the contract)."""

    def __init__(self, client: Any, model_id: str, dim: int, *, lock: DataDirLock | None = None) -> None:
        self.client = client
        self.model_id = model_id
        self.dim = dim
        self._lock = lock
        self._write_lock = threading.RLock()  # serialises this process's writes (exists-check, then add)
        name = safe_name(model_id)
        self.persons = self._collection(f"persons-{name}")
        self.faces = self._collection(f"faces-{name}")

    @classmethod
    def open(cls, *, model_id: str, dim: int, data_dir: Path, chroma_url: str = "") -> ChromaStore:
        connect, lock = open_client(data_dir, chroma_url)
        try:
            return cls(connect(), model_id, dim, lock=lock)
        except BaseException:
            if lock:
                lock.release()
            raise

    def _collection(self, name: str) -> Any:
        return model_collection(self.client, name, self.model_id, self.dim, {"hnsw": {"space": "cosine"}})

    def registration_lock(self) -> AbstractContextManager[Any]:
        """Only within this process: the Chroma-only format has no way to serialise across processes."""
        return self._write_lock

    def close(self) -> None:
        if self._lock:
            self._lock.release()
            self._lock = None

    # --- persons --------------------------------------------------------------------------------------

    @store_errors
    def heartbeat(self) -> bool:
        self.persons.count()
        return True

    @store_errors
    def person_count(self) -> int:
        return int(self.persons.count())

    @store_errors
    def face_count(self) -> int:
        return int(self.faces.count())

    @store_errors
    def get_person(self, person_id: str) -> Person | None:
        got = self.persons.get(ids=[person_id], include=["metadatas"])
        if not got["ids"]:
            return None
        return self._with_counts([self._person(got["ids"][0], got["metadatas"][0])])[0]

    @store_errors
    def list_persons(self, *, limit: int, offset: int = 0, q: str | None = None,
                     after: tuple[str, str] | None = None) -> tuple[list[Person], int]:
        """Pages by offset in Chroma's order; ``after`` is read as a full scan (this format is only read
        once more, by ``enroll migrate``)."""
        if after is not None:
            everyone, total = self.list_persons(limit=max(self.person_count(), 1), offset=0, q=q)
            later = sorted((p for p in everyone if (p.created_at, p.id) > after), key=lambda p: (p.created_at, p.id))
            return later[offset:offset + limit], total
        where_document = {"$contains": q.lower()} if q else None
        if where_document:
            total = len(self.persons.get(where_document=where_document, include=[])["ids"])
        else:
            total = self.persons.count()
        got = self.persons.get(limit=limit, offset=offset, where_document=where_document, include=["metadatas"])
        people = [self._person(i, m) for i, m in zip(got["ids"], got["metadatas"])]
        return self._with_counts(people), total

    @store_errors
    def create_person(self, *, person_id: str, name: str, metadata: dict[str, Any], faces: list[NewFace],
                      template: np.ndarray) -> tuple[Person, list[StoredFace]]:
        with self._write_lock:
            if self.persons.get(ids=[person_id], include=[])["ids"]:
                raise PersonExists(f"a person with id {person_id!r} already exists",
                                   details={"person_id": person_id})
            self.faces.delete(where={"person_id": person_id})  # leftovers of an interrupted delete
            stamp = now_iso()
            stored = self._add_faces(person_id, faces, stamp)
            try:
                self.persons.add(ids=[person_id], embeddings=[np.asarray(template, np.float32).tolist()],
                                 documents=[name.lower()], metadatas=[self._person_meta(name, metadata, stamp, stamp)])
            except BaseException:
                self.faces.delete(ids=[f.id for f in faces])  # undo: nothing half-written stays visible
                raise
        return Person(person_id, name, metadata, stamp, stamp, face_count=len(stored)), stored

    @store_errors
    def update_person(self, person_id: str, *, name: str | None = None, metadata: dict[str, Any] | None = None,
                      template: np.ndarray | None = None) -> Person:
        with self._write_lock:
            got = self.persons.get(ids=[person_id], include=["metadatas", "embeddings"])
            if not got["ids"]:
                raise missing_person(person_id)
            person = self._person(person_id, got["metadatas"][0])
            vector = np.asarray(got["embeddings"][0] if template is None else template, np.float32)
            person.name = person.name if name is None else name
            person.metadata = person.metadata if metadata is None else metadata
            person.updated_at = now_iso()
            # Chroma's update needs the vector again whenever the document changes.
            self.persons.update(ids=[person_id], embeddings=[vector.tolist()], documents=[person.name.lower()],
                                metadatas=[self._person_meta(person.name, person.metadata,
                                                             person.created_at, person.updated_at)])
        return self._with_counts([person])[0]

    @store_errors
    def delete_person(self, person_id: str) -> Person:
        with self._write_lock:
            person = self.get_person(person_id)
            if person is None:
                raise missing_person(person_id)
            self.persons.delete(ids=[person_id])  # invisible from here on
            self.faces.delete(where={"person_id": person_id})
        return person

    @store_errors
    def drop(self) -> None:
        with self._write_lock:
            self.client.delete_collection(self.persons.name)  # persons first: no search sees half of it
            self.client.delete_collection(self.faces.name)

    # --- faces ----------------------------------------------------------------------------------------

    @store_errors
    def add_faces(self, person_id: str, faces: list[NewFace], *,
                  template: np.ndarray | None = None) -> list[StoredFace]:
        with self._write_lock:
            if not self.persons.get(ids=[person_id], include=[])["ids"]:
                raise missing_person(person_id)
            stored = self._add_faces(person_id, faces, now_iso())
            self.update_person(person_id, template=template)  # not atomic: this format has no transactions
            return stored

    @store_errors
    def delete_face(self, person_id: str, face_id: str, *, template: np.ndarray | None = None) -> bool:
        with self._write_lock:
            got = self.faces.get(ids=[face_id], include=["metadatas"])
            if not got["ids"] or got["metadatas"][0].get("person_id") != person_id:
                return False
            self.faces.delete(ids=[face_id])
            self.update_person(person_id, template=template)
            return True

    @store_errors
    def faces_of(self, person_id: str, *, embeddings: bool = False) -> list[StoredFace]:
        include = ["metadatas", "documents"] + (["embeddings"] if embeddings else [])
        got = self.faces.get(where={"person_id": person_id}, include=include)
        out = []
        for i, face_id in enumerate(got["ids"]):
            meta = got["metadatas"][i]
            vector = np.asarray(got["embeddings"][i], np.float32) if embeddings else None
            out.append(StoredFace(face_id, person_id, meta["created_at"], json.loads(meta["box"]),
                                  json.loads(meta["quality"]), bool(got["documents"][i]), vector))
        out.sort(key=lambda f: f.created_at)
        return out

    @store_errors
    def face_crop(self, person_id: str, face_id: str) -> bytes | None:
        got = self.faces.get(ids=[face_id], include=["metadatas", "documents"])
        if not got["ids"] or got["metadatas"][0].get("person_id") != person_id or not got["documents"][0]:
            return None
        return base64.b64decode(got["documents"][0])

    # --- search ---------------------------------------------------------------------------------------

    @store_errors
    def nearest_persons(self, embedding: np.ndarray, k: int, *, exclude: str | None = None) -> list[Candidate]:
        total = self.persons.count()
        if total == 0:
            return []
        n = min(total, k + (1 if exclude else 0))
        got = self.persons.query(query_embeddings=[np.asarray(embedding, np.float32).tolist()], n_results=n,
                                 include=["metadatas", "distances"])
        out = [Candidate(pid, meta.get("name", ""), 1.0 - float(dist))
               for pid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0]) if pid != exclude]
        return sorted(out, key=lambda c: -c.similarity)[:k]

    @store_errors
    def template_of(self, person_id: str) -> np.ndarray:
        got = self.persons.get(ids=[person_id], include=["embeddings"])
        if not got["ids"]:
            raise missing_person(person_id)
        return np.asarray(got["embeddings"][0], np.float32)

    # --- internals ------------------------------------------------------------------------------------

    def _add_faces(self, person_id: str, faces: list[NewFace], stamp: str) -> list[StoredFace]:
        if not faces:
            return []
        self.faces.add(
            ids=[f.id for f in faces],
            embeddings=[np.asarray(f.embedding, np.float32).tolist() for f in faces],
            documents=[base64.b64encode(f.crop_jpeg).decode() if f.crop_jpeg else "" for f in faces],
            metadatas=[{"person_id": person_id, "face_id": f.id, "created_at": stamp,
                        "probability": float(f.quality.get("probability", 0.0)),
                        "face_size": float(f.quality.get("size", 0.0)),
                        "box": json.dumps(f.box), "quality": json.dumps(f.quality)} for f in faces])
        return [StoredFace(f.id, person_id, stamp, f.box, f.quality, bool(f.crop_jpeg)) for f in faces]

    @staticmethod
    def _person_meta(name: str, metadata: dict[str, Any], created: str, updated: str) -> dict[str, Any]:
        return {"name": name, "metadata": json.dumps(metadata), "created_at": created, "updated_at": updated}

    @staticmethod
    def _person(person_id: str, meta: dict[str, Any]) -> Person:
        return Person(person_id, meta.get("name", ""), json.loads(meta.get("metadata") or "{}"),
                      meta.get("created_at", ""), meta.get("updated_at", ""))

    def _with_counts(self, people: list[Person]) -> list[Person]:
        if not people:
            return people
        got = self.faces.get(where={"person_id": {"$in": [p.id for p in people]}}, include=["metadatas"])
        counts: dict[str, int] = {}
        for meta in got["metadatas"]:
            counts[meta["person_id"]] = counts.get(meta["person_id"], 0) + 1
        for p in people:
            p.face_count = counts.get(p.id, 0)
        return people
