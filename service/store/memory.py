"""An in-memory face store (numpy, exact search): for fast unit tests of the rules, and the reference the
contract suite holds every other store to. Nothing is persisted."""
from __future__ import annotations

import copy
import threading
from collections import Counter
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..core.records import Candidate, NewFace, Person, StoredFace, now_iso
from ..errors import PersonExists
from .base import NothingToKeepUp, missing_person


class MemoryStore(NothingToKeepUp):
    def __init__(self, model_id: str, dim: int) -> None:
        self.model_id, self.dim = model_id, dim
        self._persons: dict[str, tuple[Person, np.ndarray]] = {}
        self._faces: dict[str, tuple[StoredFace, bytes | None]] = {}
        self._lock = threading.RLock()

    def heartbeat(self) -> bool:
        return True

    def person_count(self) -> int:
        return len(self._persons)

    def face_count(self) -> int:
        return len(self._faces)

    def get_person(self, person_id: str) -> Person | None:
        with self._lock:
            entry = self._persons.get(person_id)
            return None if entry is None else self._counted(entry[0])

    def list_persons(self, *, limit: int, offset: int = 0, q: str | None = None,
                     after: tuple[str, str] | None = None) -> tuple[list[Person], int]:
        with self._lock:
            people = sorted((p for p, _ in self._persons.values() if not q or q.lower() in p.name.lower()),
                            key=lambda p: (p.created_at, p.id))
            total = len(people)
            if after is not None:
                people = [p for p in people if (p.created_at, p.id) > after]
            return [self._counted(p) for p in people[offset:offset + limit]], total

    def create_person(self, *, person_id: str, name: str, metadata: dict[str, Any], faces: list[NewFace],
                      template: np.ndarray) -> tuple[Person, list[StoredFace]]:
        with self._lock:
            if person_id in self._persons:
                raise PersonExists(f"a person with id {person_id!r} already exists",
                                   details={"person_id": person_id})
            stamp = now_iso()
            stored = self._add(person_id, faces, stamp)
            self._persons[person_id] = (Person(person_id, name, copy.deepcopy(metadata), stamp, stamp),
                                        np.asarray(template, np.float32))
            return self._counted(self._persons[person_id][0]), stored

    def update_person(self, person_id: str, *, name: str | None = None, metadata: dict[str, Any] | None = None,
                      template: np.ndarray | None = None) -> Person:
        with self._lock:
            person, vector = self._require(person_id)
            person.name = person.name if name is None else name
            person.metadata = person.metadata if metadata is None else copy.deepcopy(metadata)
            person.updated_at = now_iso()
            if template is not None:
                vector = np.asarray(template, np.float32)
            self._persons[person_id] = (person, vector)
            return self._counted(person)

    def delete_person(self, person_id: str) -> Person:
        with self._lock:
            person = self._counted(self._require(person_id)[0])
            del self._persons[person_id]
            for face_id in [f.id for f, _ in self._faces.values() if f.person_id == person_id]:
                del self._faces[face_id]
            return person

    def add_faces(self, person_id: str, faces: list[NewFace], *,
                  template: np.ndarray | None = None) -> list[StoredFace]:
        with self._lock:
            self._require(person_id)
            stored = self._add(person_id, faces, now_iso())
            self.update_person(person_id, template=template)
            return stored

    def delete_face(self, person_id: str, face_id: str, *, template: np.ndarray | None = None) -> bool:
        with self._lock:
            entry = self._faces.get(face_id)
            if entry is None or entry[0].person_id != person_id:
                return False
            del self._faces[face_id]
            self.update_person(person_id, template=template)
            return True

    def faces_of(self, person_id: str, *, embeddings: bool = False) -> list[StoredFace]:
        with self._lock:
            faces = [copy.copy(f) for f, _ in self._faces.values() if f.person_id == person_id]
        for f in faces:
            f.embedding = f.embedding if embeddings else None
        return sorted(faces, key=lambda f: f.created_at)

    def face_crop(self, person_id: str, face_id: str) -> bytes | None:
        entry = self._faces.get(face_id)
        return entry[1] if entry is not None and entry[0].person_id == person_id else None

    def template_of(self, person_id: str) -> np.ndarray:
        with self._lock:
            return self._require(person_id)[1].copy()

    def nearest_persons(self, embedding: np.ndarray, k: int, *, exclude: str | None = None) -> list[Candidate]:
        with self._lock:
            entries = [(p, v) for p, v in self._persons.values() if p.id != exclude]
        if not entries:
            return []
        matrix = np.stack([v for _, v in entries])
        query = np.asarray(embedding, np.float32)
        scores = matrix @ query / np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(query), 1e-12)
        order = np.argsort(-scores)[:k]
        with self._lock:
            photos = Counter(f.person_id for f, _ in self._faces.values())
        return [Candidate(entries[i][0].id, entries[i][0].name, float(scores[i]), photos[entries[i][0].id])
                for i in order]

    def drop(self) -> None:
        with self._lock:
            self._persons.clear()
            self._faces.clear()

    def close(self) -> None:
        pass

    def registration_lock(self) -> AbstractContextManager[Any]:
        return self._lock

    def _require(self, person_id: str) -> tuple[Person, np.ndarray]:
        entry = self._persons.get(person_id)
        if entry is None:
            raise missing_person(person_id)
        return entry

    def _counted(self, person: Person) -> Person:
        out = copy.deepcopy(person)
        out.face_count = sum(1 for f, _ in self._faces.values() if f.person_id == person.id)
        return out

    def _add(self, person_id: str, faces: list[NewFace], stamp: str) -> list[StoredFace]:
        stored = []
        for f in faces:
            face = StoredFace(f.id, person_id, stamp, dict(f.box), dict(f.quality), bool(f.crop_jpeg),
                              np.asarray(f.embedding, np.float32), f.source_sha256)
            self._faces[f.id] = (face, f.crop_jpeg)
            stored.append(StoredFace(f.id, person_id, stamp, dict(f.box), dict(f.quality), bool(f.crop_jpeg),
                                     source_sha256=f.source_sha256))
        return stored
