"""The face store: persons and their face embeddings in Chroma, and nearest-person search.

Chroma is the only state of the service, so several service instances can share a Chroma server. Two
collections per model id:

* ``faces-<model>`` (cosine space): one record per enrolled face: its embedding, ``person_id``, quality
  measures, and (unless disabled) the aligned face crop as a small base64 JPEG in the document field, so a
  crop lives and dies with its embedding.
* ``persons-<model>`` (cosine space): one record per person whose vector is the person's *template*, the
  renormalised mean of their face embeddings (measured on LFW and celeba_dev: it verifies and identifies
  better than the best single face, see bench/results/identify.json); name, metadata (JSON), timestamps.
  The document is the lower-cased name, for substring search. 1:N search is one query on this collection.

Visibility is what makes writes atomic as clients see them: a person exists once its person record exists.
Registration writes the faces first and the person record (with its template) last; deletion removes the
person record first. Search runs on person records only, so a half-done write is never seen, and a person id
that is reused gets its stale faces swept before new ones are written.

This module knows nothing about images, detection or models: it stores and searches vectors.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import json
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .errors import ConfigError, FaceIdError, PersonExists, PersonNotFound, StoreUnavailable, ValidationError

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Person:
    id: str
    name: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    face_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "metadata": self.metadata, "face_count": self.face_count,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class NewFace:
    """A face ready to store: the recognizer fills it, the gallery persists it."""
    embedding: np.ndarray
    box: dict[str, float]
    quality: dict[str, float]
    crop_jpeg: bytes | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class StoredFace:
    id: str
    person_id: str
    created_at: str
    box: dict[str, float]
    quality: dict[str, float]
    has_crop: bool
    embedding: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "box": self.box, "quality": self.quality, "created_at": self.created_at}


@dataclass
class Candidate:
    person_id: str
    name: str
    similarity: float


def template(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """A person's template: the renormalised mean of their face embeddings."""
    mean = np.mean(np.stack(embeddings), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def _store_call(fn: Callable[..., T]) -> Callable[..., T]:
    """Chroma failures (server down, disk errors) become 503 store_unavailable; our own errors pass."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except FaceIdError:
            raise
        except Exception as exc:  # chromadb raises many unrelated types; none is the client's fault
            log.error("store call failed", extra={"op": fn.__name__, "error": f"{type(exc).__name__}: {exc}"})
            raise StoreUnavailable(details={"op": fn.__name__}) from exc
    return wrapper


def _safe_name(model_id: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]", "-", model_id).strip("-._") or "model"


class DataDirLock:
    """An exclusive lock on the data dir: Chroma's embedded PersistentClient is not process-safe, and two
    processes writing one HNSW index corrupt it. A second process gets a clear error instead."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "store.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = self.path.read_text().strip() or "another process"
            raise ConfigError(f"the data dir {self.path.parent} is in use by {holder}: the embedded store "
                              f"allows one process (run one gunicorn worker with threads, or use a Chroma "
                              f"server via chroma_url)", details={"lock": str(self.path)})
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Gallery:
    """Persons and faces of one model id."""

    def __init__(self, client: Any, model_id: str, dim: int, *, lock: DataDirLock | None = None) -> None:
        self.client = client
        self.model_id = model_id
        self.dim = dim
        self._lock = lock
        self._write_lock = threading.RLock()  # serialises writes within this process
        name = _safe_name(model_id)
        self.persons = self._collection(f"persons-{name}", {"hnsw": {"space": "cosine"}})
        self.faces = self._collection(f"faces-{name}", {"hnsw": {"space": "cosine"}})

    # --- opening --------------------------------------------------------------------------------------

    @classmethod
    def open(cls, *, model_id: str, dim: int, data_dir: Path, chroma_url: str = "") -> "Gallery":
        import chromadb

        chroma_settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
        if chroma_url:
            from urllib.parse import urlparse
            url = urlparse(chroma_url)
            try:
                client = chromadb.HttpClient(host=url.hostname or "localhost",
                                             port=url.port or (443 if url.scheme == "https" else 8000),
                                             ssl=url.scheme == "https", settings=chroma_settings)
            except Exception as exc:
                raise StoreUnavailable(f"cannot reach the Chroma server at {chroma_url}: {exc}") from exc
            return cls(client, model_id, dim)
        lock = DataDirLock(data_dir)
        lock.acquire()
        try:
            store = data_dir / "chroma"
            store.mkdir(parents=True, exist_ok=True)
            os.chmod(store, 0o700)  # biometric data: owner only
            client = chromadb.PersistentClient(path=str(store), settings=chroma_settings)
            return cls(client, model_id, dim, lock=lock)
        except BaseException:
            lock.release()
            raise

    def _collection(self, name: str, configuration: dict) -> Any:
        expected = {"model_id": self.model_id, "dim": self.dim, "schema": SCHEMA}
        collection = self.client.get_or_create_collection(name, metadata=expected, configuration=configuration,
                                                          embedding_function=None)
        found = collection.metadata or {}
        if found.get("model_id") != self.model_id or int(found.get("dim", -1)) != self.dim:
            raise ConfigError(
                f"collection {name} holds {found.get('model_id')} embeddings (dim {found.get('dim')}); this "
                f"service runs {self.model_id} (dim {self.dim}). Re-enroll with `python -m enroll reindex` or "
                f"point data_dir/chroma_url at another store", details={"collection": name})
        return collection

    def check_other_models(self) -> None:
        """Refuse to start on a store whose people were enrolled with another model id: vectors of
        different models are not comparable, and silently serving an empty gallery would lose everyone."""
        mine = {self.persons.name, self.faces.name}
        for collection in self.client.list_collections():
            name = getattr(collection, "name", collection)
            if name.startswith("persons-") and name not in mine:
                other = self.client.get_collection(name)
                if other.count():
                    raise ConfigError(
                        f"this store holds persons enrolled with {(other.metadata or {}).get('model_id')}; "
                        f"the service is configured for {self.model_id}. Re-enroll (python -m enroll reindex) "
                        f"or configure the original model", details={"collection": name})

    def close(self) -> None:
        if self._lock:
            self._lock.release()

    # --- persons --------------------------------------------------------------------------------------

    @_store_call
    def heartbeat(self) -> bool:
        self.persons.count()
        return True

    @_store_call
    def person_count(self) -> int:
        return self.persons.count()

    @_store_call
    def face_count(self) -> int:
        return self.faces.count()

    @_store_call
    def get_person(self, person_id: str) -> Person | None:
        got = self.persons.get(ids=[person_id], include=["metadatas"])
        if not got["ids"]:
            return None
        return self._with_counts([self._person(got["ids"][0], got["metadatas"][0])])[0]

    def require_person(self, person_id: str) -> Person:
        person = self.get_person(person_id)
        if person is None:
            raise PersonNotFound(f"no person with id {person_id!r}", details={"person_id": person_id})
        return person

    @_store_call
    def list_persons(self, *, limit: int, offset: int, q: str | None = None) -> tuple[list[Person], int]:
        where_document = {"$contains": q.lower()} if q else None
        if where_document:
            total = len(self.persons.get(where_document=where_document, include=[])["ids"])
        else:
            total = self.persons.count()
        got = self.persons.get(limit=limit, offset=offset, where_document=where_document, include=["metadatas"])
        people = [self._person(i, m) for i, m in zip(got["ids"], got["metadatas"])]
        return self._with_counts(people), total

    @_store_call
    def create_person(self, *, person_id: str, name: str, metadata: dict[str, Any],
                      faces: list[NewFace]) -> tuple[Person, list[StoredFace]]:
        with self._write_lock:
            if self.persons.get(ids=[person_id], include=[])["ids"]:
                raise PersonExists(f"a person with id {person_id!r} already exists",
                                   details={"person_id": person_id})
            self._sweep_faces(person_id)  # leftovers of an interrupted delete must not join the new person
            stamp = now_iso()
            stored = self._add_faces(person_id, faces, stamp)
            try:
                self.persons.add(ids=[person_id], embeddings=[template([f.embedding for f in faces]).tolist()],
                                 documents=[name.lower()], metadatas=[self._person_meta(name, metadata, stamp, stamp)])
            except BaseException:
                self.faces.delete(ids=[f.id for f in faces])  # undo: nothing half-written stays visible
                raise
        person = Person(person_id, name, metadata, stamp, stamp, face_count=len(stored))
        return person, stored

    @_store_call
    def update_person(self, person_id: str, *, name: str | None = None,
                      metadata: dict[str, Any] | None = None, refresh_template: bool = False) -> Person:
        """Change name/metadata, and recompute the template from the stored faces when they changed."""
        with self._write_lock:
            got = self.persons.get(ids=[person_id], include=["metadatas", "embeddings"])
            if not got["ids"]:
                raise PersonNotFound(f"no person with id {person_id!r}", details={"person_id": person_id})
            person = self._person(person_id, got["metadatas"][0])
            vector = np.asarray(got["embeddings"][0], np.float32)
            if refresh_template:
                faces = self.faces_of(person_id, embeddings=True)
                if faces:  # never empty: delete_face keeps the last face
                    vector = template([f.embedding for f in faces])
            person.name = person.name if name is None else name
            person.metadata = person.metadata if metadata is None else metadata
            person.updated_at = now_iso()
            # Chroma's update needs the vector again whenever the document changes.
            self.persons.update(ids=[person_id], embeddings=[vector.tolist()], documents=[person.name.lower()],
                                metadatas=[self._person_meta(person.name, person.metadata,
                                                             person.created_at, person.updated_at)])
        return self._with_counts([person])[0]

    @_store_call
    def delete_person(self, person_id: str) -> Person:
        with self._write_lock:
            person = self.require_person(person_id)
            self.persons.delete(ids=[person_id])  # invisible from here on
            self._sweep_faces(person_id)
        return person

    @_store_call
    def drop(self) -> None:
        """Erase this model id's whole store (persons first, so no search sees half of it): what is left of
        a model after its people moved to another (``enroll reindex``)."""
        with self._write_lock:
            self.client.delete_collection(self.persons.name)
            self.client.delete_collection(self.faces.name)

    # --- faces ----------------------------------------------------------------------------------------

    @_store_call
    def add_faces(self, person_id: str, faces: list[NewFace]) -> tuple[Person, list[StoredFace]]:
        with self._write_lock:
            self.require_person(person_id)
            stored = self._add_faces(person_id, faces, now_iso())
            return self.touch(person_id), stored

    @_store_call
    def delete_face(self, person_id: str, face_id: str) -> Person | None:
        """Remove one face and refresh the template; the updated person, or None if they have no such face.
        A person's last face cannot go: a person without faces has no template to match, so delete the person
        instead."""
        with self._write_lock:
            got = self.faces.get(ids=[face_id], include=["metadatas"])
            if not got["ids"] or got["metadatas"][0].get("person_id") != person_id:
                return None
            if len(self.faces.get(where={"person_id": person_id}, include=[])["ids"]) <= 1:
                raise ValidationError("this is the person's last face; delete the person instead",
                                      field="face_id", details={"person_id": person_id, "face_id": face_id})
            self.faces.delete(ids=[face_id])
            return self.touch(person_id)

    def touch(self, person_id: str) -> Person:
        """After faces were added or removed: new template, new ``updated_at``."""
        return self.update_person(person_id, refresh_template=True)

    @_store_call
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

    @_store_call
    def face_crop(self, person_id: str, face_id: str) -> bytes | None:
        got = self.faces.get(ids=[face_id], include=["metadatas", "documents"])
        if not got["ids"] or got["metadatas"][0].get("person_id") != person_id or not got["documents"][0]:
            return None
        return base64.b64decode(got["documents"][0])

    # --- search ---------------------------------------------------------------------------------------

    @_store_call
    def nearest_persons(self, embedding: np.ndarray, k: int, *, exclude: str | None = None) -> list[Candidate]:
        """The ``k`` persons whose templates are most similar to ``embedding`` (cosine)."""
        total = self.persons.count()
        if total == 0:
            return []
        n = min(total, k + (1 if exclude else 0))
        got = self.persons.query(query_embeddings=[np.asarray(embedding, np.float32).tolist()], n_results=n,
                                 include=["metadatas", "distances"])
        out = [Candidate(pid, meta.get("name", ""), 1.0 - float(dist))
               for pid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0]) if pid != exclude]
        return sorted(out, key=lambda c: -c.similarity)[:k]

    @_store_call
    def template_of(self, person_id: str) -> np.ndarray:
        got = self.persons.get(ids=[person_id], include=["embeddings"])
        if not got["ids"]:
            raise PersonNotFound(f"no person with id {person_id!r}", details={"person_id": person_id})
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

    def _sweep_faces(self, person_id: str) -> None:
        self.faces.delete(where={"person_id": person_id})

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
