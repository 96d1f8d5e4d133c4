"""What the core needs from the outside, as protocols it owns: the vision layer (detector, embedder, crops)
and the store. The core never imports a model runtime or a database; the implementations import this.

The face store, in domain terms: no Chroma (or any database) type crosses it.

A store keeps persons (name, metadata, a *template* vector) and their faces (embedding, box, quality, crop),
and finds the persons whose templates are nearest to a vector. It knows nothing about images, detection or
models, and it holds no business rules: which vector is a person's template, whether a face may be removed,
or what counts as a duplicate is decided by the recognizer (``recognizer``).

What every implementation guarantees (the contract suite checks it):

* a person exists once ``create_person`` returns; its faces are never visible without it, and a failed
  ``create_person`` leaves nothing behind;
* ``create_person`` with a taken id raises ``PersonExists``; reads and writes on a missing person raise
  ``PersonNotFound`` (``get_person`` returns None instead);
* ``nearest_persons`` returns cosine similarities of templates, best first, each with how many faces the
  person's template holds (identify's threshold depends on it), counted without a query per candidate;
* store failures (unreachable server, I/O errors) raise ``StoreUnavailable``; anything else is a bug and
  propagates as it is.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from .records import Candidate, Face, IndexState, NewFace, Person, StoredFace


class Detector(Protocol):
    @property
    def ready(self) -> bool: ...

    def prepare(self) -> Any: ...

    def detect(self, rgb: np.ndarray, *, main_face: bool = False, min_size: float = 0.0) -> list[Face]:
        """Every face in ``rgb``, largest first. ``main_face``: the caller needs only the largest, so the
        detector may skip searching for small ones. ``min_size``: faces smaller than that (px of ``rgb``) do
        not count for the caller, so the detector may skip searching for them, as long as it still finds
        every face when none is that large."""
        ...


class Embedder(Protocol):
    """Aligns a face the way its model was trained and embeds it: L2-normalised float32 vectors."""
    model_id: str
    dim: int

    @property
    def ready(self) -> bool: ...

    def prepare(self) -> Any: ...

    def align(self, rgb: np.ndarray, face: Face) -> Any: ...

    def embed(self, crops: Sequence[Any]) -> np.ndarray: ...

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray: ...


class FaceCrops(Protocol):
    """The model-independent crops of a face: one to measure sharpness on, one to keep as a thumbnail."""

    def sharpness(self, rgb: np.ndarray, face: Face) -> float: ...

    def stored_crop(self, rgb: np.ndarray, face: Face) -> bytes:
        """A JPEG with context around the face, so any model can re-detect and re-align in it later."""
        ...


class FaceStore(Protocol):
    model_id: str
    dim: int

    def heartbeat(self) -> bool: ...

    def person_count(self) -> int: ...

    def face_count(self) -> int: ...

    def get_person(self, person_id: str) -> Person | None: ...

    def list_persons(self, *, limit: int, offset: int = 0, q: str | None = None,
                     after: tuple[str, str] | None = None) -> tuple[list[Person], int]:
        """A page of persons in (created_at, id) order, and the total (of those matching ``q``, a
        case-insensitive name substring). ``after`` (a person's created_at and id) continues a listing
        where it stopped: a keyset, which costs the same on page 1 and page 10,000."""
        ...

    def create_person(self, *, person_id: str, name: str, metadata: dict[str, Any], faces: list[NewFace],
                      template: np.ndarray) -> tuple[Person, list[StoredFace]]: ...

    def update_person(self, person_id: str, *, name: str | None = None, metadata: dict[str, Any] | None = None,
                      template: np.ndarray | None = None) -> Person:
        """Change what is given (and ``updated_at``); the person as stored afterwards."""
        ...

    def delete_person(self, person_id: str) -> Person:
        """Erase the person with every face, crop and vector; what was erased."""
        ...

    def add_faces(self, person_id: str, faces: list[NewFace], *,
                  template: np.ndarray | None = None) -> list[StoredFace]:
        """Add faces and, when given, the person's new template, as one write."""
        ...

    def delete_face(self, person_id: str, face_id: str, *, template: np.ndarray | None = None) -> bool:
        """Remove a face and, when given, set the person's new template, as one write. False when the
        person has no such face (nothing changes)."""
        ...

    def faces_of(self, person_id: str, *, embeddings: bool = False) -> list[StoredFace]:
        """The person's faces, oldest first (empty for an unknown person)."""
        ...

    def face_crop(self, person_id: str, face_id: str) -> bytes | None: ...

    def template_of(self, person_id: str) -> np.ndarray: ...

    def nearest_persons(self, embedding: np.ndarray, k: int, *, exclude: str | None = None) -> list[Candidate]: ...

    def drop(self) -> None:
        """Erase this model id's whole store."""
        ...

    @property
    def erasures_pending(self) -> bool:
        """Something was erased since the last ``compact``: its bytes may still be in the files."""
        ...

    def compact(self) -> dict[str, Any]:
        """Make erasures final on disk (see the README's erasure section for the window)."""
        ...

    def upkeep(self) -> None:
        """Periodic upkeep: bring the search index up to date with the records."""
        ...

    def index_state(self) -> IndexState: ...

    def registration_lock(self) -> AbstractContextManager[Any]:
        """Held while a registration checks for duplicates and writes: one registration at a time on every
        worker and host that shares this store, so one face cannot be enrolled under two ids at once."""
        ...

    def close(self) -> None: ...


def every_person(store: FaceStore, page: int = 100) -> Iterator[Person]:
    """Every person of ``store``, a page at a time (for bulk moves; the store must not change meanwhile)."""
    offset = 0
    while True:
        people, _ = store.list_persons(limit=page, offset=offset)  # not keyset: the legacy store pages by offset
        if not people:
            return
        offset += len(people)
        yield from people


class AuditTrail(Protocol):
    """The audit events kept in the records database, for ``GET /v1/audit`` (the events are written by the
    audit loggers; this reads them back)."""

    def flush(self) -> None:
        """Write this process's queued events now, so a reader sees what just happened here."""
        ...

    def queued(self) -> int: ...

    def page(self, *, limit: int, before: int | None = None, person_id: str | None = None,
             actor_id: str | None = None, op: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``before`` is an event id (a keyset)."""
        ...
