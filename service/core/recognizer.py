"""The use-cases, called by the HTTP layer and the bulk CLI alike: bytes in, decisions out.

Each takes the face pipeline (pixels -> embedded faces), the store (persons and vectors) and the calibration,
and holds the rules: a person's template is the mean of their faces and follows every change, a person keeps
at least one face, a face that already belongs to someone else is refused (``duplicate_policy``), and the
decision (threshold, match) is made here and only here. Knows nothing about HTTP or JSON.
"""
from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import (
    DuplicateFace,
    DuplicatePhoto,
    FaceMismatch,
    FaceNotFound,
    PersonExists,
    PersonNotFound,
    StoreUnavailable,
    ValidationError,
)
from .calibration import Calibration, OpenSetDecision
from .pipeline import EnrollmentCheck, FacePipeline
from .ports import FaceStore
from .records import (
    Candidate,
    Detection,
    Identification,
    IdentifiedFace,
    IndexState,
    NewFace,
    Person,
    StoredFace,
    Verdict,
    photo_hash,
)
from .text import MAX_NAME, canonical, check_json_strings
from .vectors import template

log = logging.getLogger("faceid.decisions")
PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


@dataclass(frozen=True)
class Policy:
    verify_threshold: float = 0.0  # 0: the calibrated one
    identify_target_far: float = 0.01
    duplicate_policy: str = "reject"
    add_faces_must_match: bool = True
    default_top_k: int = 5
    max_top_k: int = 50


class Recognizer:
    def __init__(self, pipeline: FacePipeline, store: FaceStore, calibration: Calibration,
                 policy: Policy = Policy()) -> None:
        self.pipeline, self.store, self.calibration, self.policy = pipeline, store, calibration, policy
        self.model_id = pipeline.embedder.model_id
        self.verify_threshold = policy.verify_threshold or calibration.verify_threshold(self.model_id)
        # an identify_target_far the open-set rule was not calibrated for stops the start, not a request
        calibration.open_set_decision(self.model_id, 1, policy.identify_target_far, self.verify_threshold)
        # Template upkeep reads the faces and writes the template: one writer at a time in this process.
        # Writes that add or remove vectors also hold the store's registration lock (every process), taken
        # first, so a compaction never rebuilds the index under them.
        self._writes = threading.RLock()

    @property
    def ready(self) -> bool:
        return self.pipeline.ready

    def close(self) -> None:
        self.store.close()

    def store_answers(self) -> bool:
        """Readiness: the store answers (False when it is down, slow or out of disk)."""
        try:
            return bool(self.store.heartbeat())
        except StoreUnavailable:
            return False

    def gallery_size(self) -> int:
        return self.store.person_count()

    # --- thresholds -----------------------------------------------------------------------------------

    def effective_threshold(self, default: float, requested: float | None) -> float:
        """A request may ask for a stricter threshold, never a looser one."""
        if requested is None:
            return default
        if not 0 <= requested <= 1:
            raise ValidationError("threshold must be within [0, 1]", field="threshold")
        if requested < default:
            raise ValidationError(f"threshold may only be raised above the calibrated {default:.4f}",
                                  field="threshold", details={"minimum": round(default, 4)})
        return requested

    def open_set_decision(self) -> OpenSetDecision:
        """How identify and the duplicate check decide at the current gallery size (one template per
        enrolled person), and what that promises: one place, ``Calibration.open_set_decision``."""
        return self.calibration.open_set_decision(self.model_id, self.store.person_count(),
                                                  self.policy.identify_target_far, self.verify_threshold)

    def identify_threshold(self) -> tuple[float, float, int]:
        """(lowest similarity identify can accept, per-comparison FAR, gallery size)."""
        decision = self.open_set_decision()
        return decision.least_similarity, decision.per_comparison_far, decision.gallery_size

    # --- enrollment -----------------------------------------------------------------------------------

    def check_duplicates(self, faces: Sequence[NewFace], person_id: str | None) -> None:
        """Refuse a face that already belongs to someone else. "Belongs" is the question identify answers,
        so it is asked at identify's open-set threshold for the current gallery size: at verify's 1:1
        threshold, false duplicates would grow with the gallery (about 1 in 4 new people at 1,000)."""
        if self.policy.duplicate_policy == "allow":
            return
        decision = self.open_set_decision()
        for i, face in enumerate(faces):
            hits = self.store.nearest_persons(face.embedding, 2, exclude=person_id)
            if hits and decision.accepts(hits[0].similarity, hits[1].similarity if len(hits) > 1 else None,
                                         hits[0].photos):
                other = hits[0]
                log.info("decision", extra={"op": "enroll", "decision": "duplicate_face",
                                            "other_person_id": other.person_id,
                                            "similarity": round(other.similarity, 4)})
                raise DuplicateFace(f"image {i} matches existing person {other.person_id!r}",
                                    details={"image_index": i, "person_id": other.person_id,
                                             "similarity": round(other.similarity, 4)})

    def enroll(self, *, images: Sequence[bytes], name: str, metadata: dict[str, Any] | None = None,
               person_id: str | None = None) -> tuple[Person, list[StoredFace]]:
        """Register a new person from one or more images: all or nothing. Text in its canonical form
        (``core.text``) whoever calls: ``enroll import`` takes names from folder names, NFD on macOS."""
        name = canonical(name, "name", max_length=MAX_NAME, searched=True)
        check_json_strings(metadata or {}, "metadata")
        person_id = canonical(person_id, "person_id", max_length=128) if person_id else uuid.uuid4().hex
        if not PERSON_ID.match(person_id):
            raise ValidationError("person_id: 1-128 characters, letters, digits and . _ : @ -",
                                  field="person_id")
        if self.store.get_person(person_id) is not None:  # before any image work; the store re-checks
            raise PersonExists(f"a person with id {person_id!r} already exists", details={"person_id": person_id})
        self._refuse_known_photos(person_id, images, [])
        faces = [self.pipeline.enrollment_face(data, i) for i, data in enumerate(images)]
        with self.store.registration_lock():  # check and write as one step, on every worker
            self.check_duplicates(faces, None)
            person, stored = self.store.create_person(person_id=person_id, name=name, metadata=metadata or {},
                                                      faces=faces, template=template([f.embedding for f in faces]))
        log.info("decision", extra={"op": "enroll", "decision": "registered", "person_id": person_id,
                                    "faces": len(stored)})
        return person, stored

    @staticmethod
    def _refuse_known_photos(person_id: str, images: Sequence[bytes], known: Sequence[StoredFace]) -> None:
        """Before any image work: a photo the person already has (or one sent twice) is ``duplicate_photo``,
        so a bulk import's re-run, or a retry whose answer was lost, never adds it again. The database's unique
        index on (person, photo hash) backs this up against two requests racing."""
        stored = {f.source_sha256: f.id for f in known if f.source_sha256}
        sent: dict[str, int] = {}
        for i, data in enumerate(images):
            digest = photo_hash(data)
            if digest in stored:
                raise DuplicatePhoto(f"image {i} is already one of person {person_id!r}'s photos",
                                     details={"image_index": i, "person_id": person_id, "face_id": stored[digest]})
            if digest in sent:
                raise DuplicatePhoto(f"image {i} is the same photo as image {sent[digest]}",
                                     details={"image_index": i, "person_id": person_id})
            sent[digest] = i

    def add_faces(self, person_id: str, images: Sequence[bytes], *,
                  allow_mismatch: bool = False) -> tuple[Person, list[StoredFace]]:
        """More faces for a person. Each must match the person as verify would (unless the policy or an
        admin's ``allow_mismatch`` says otherwise): else one stolen client key could turn an identity into
        someone else's, one added face at a time."""
        self.require_person(person_id)
        self._refuse_known_photos(person_id, images, self.store.faces_of(person_id))
        faces = [self.pipeline.enrollment_face(data, i) for i, data in enumerate(images)]
        if self.policy.add_faces_must_match and not allow_mismatch:
            reference = self.store.template_of(person_id)
            for i, face in enumerate(faces):
                similarity = float(reference @ face.embedding)
                if similarity < self.verify_threshold:
                    log.info("decision", extra={"op": "add_faces", "decision": "face_mismatch",
                                                "person_id": person_id, "similarity": round(similarity, 4)})
                    raise FaceMismatch(f"image {i} does not match person {person_id!r}",
                                       details={"image_index": i, "person_id": person_id})
        with self.store.registration_lock(), self._writes:
            self.check_duplicates(faces, person_id)
            kept = self._embeddings(person_id)
            stored = self.store.add_faces(person_id, faces,
                                          template=template(kept + [f.embedding for f in faces]))
            person = self.require_person(person_id)
        log.info("decision", extra={"op": "add_faces", "decision": "added", "person_id": person_id,
                                    "faces": len(stored)})
        return person, stored

    def delete_face(self, person_id: str, face_id: str) -> Person:
        """Remove one face and refresh the template. A person's last face cannot go: a person without faces
        has no template to match, so delete the person instead."""
        missing = FaceNotFound(f"person {person_id!r} has no face {face_id!r}",
                               details={"person_id": person_id, "face_id": face_id})
        with self.store.registration_lock(), self._writes:
            faces = self.store.faces_of(self.require_person(person_id).id, embeddings=True)
            if face_id not in {f.id for f in faces}:
                raise missing
            if len(faces) <= 1:
                raise ValidationError("this is the person's last face; delete the person instead",
                                      field="face_id", details={"person_id": person_id, "face_id": face_id})
            kept = [f.embedding for f in faces if f.id != face_id and f.embedding is not None]
            if not self.store.delete_face(person_id, face_id, template=template(kept)):
                raise missing  # gone since it was read (another host on the old format)
            person = self.require_person(person_id)
        log.info("decision", extra={"op": "delete_face", "decision": "erased", "person_id": person_id,
                                    "face_id": face_id})
        return person

    def _embeddings(self, person_id: str) -> list[np.ndarray]:
        return [f.embedding for f in self.store.faces_of(person_id, embeddings=True) if f.embedding is not None]

    # --- the admin resource ---------------------------------------------------------------------------

    def compact(self) -> dict[str, Any] | None:
        """Make erasures final on disk (``store.compact``), if anything was erased. It rebuilds nothing and
        holds no registration: writes go on meanwhile."""
        if not self.store.erasures_pending:
            return None
        return self.store.compact()

    def index_state(self) -> IndexState:
        return self.store.index_state()

    def upkeep(self) -> None:
        """Bring the index up to date with the records (``store.upkeep``): run every few seconds."""
        self.store.upkeep()

    def require_person(self, person_id: str) -> Person:
        person = self.store.get_person(person_id)
        if person is None:
            raise PersonNotFound(f"no person with id {person_id!r}", details={"person_id": person_id})
        return person

    def list_persons(self, *, limit: int, offset: int = 0, q: str | None = None,
                     after: tuple[str, str] | None = None) -> tuple[list[Person], int]:
        return self.store.list_persons(limit=limit, offset=offset, q=q, after=after)

    def person_faces(self, person_id: str) -> tuple[Person, list[StoredFace]]:
        return self.require_person(person_id), self.store.faces_of(person_id)

    def update_person(self, person_id: str, *, name: str | None = None,
                      metadata: dict[str, Any] | None = None) -> Person:
        if name is not None:
            name = canonical(name, "name", max_length=MAX_NAME, searched=True)
        check_json_strings(metadata or {}, "metadata")
        with self._writes:
            person = self.store.update_person(person_id, name=name, metadata=metadata)
        log.info("decision", extra={"op": "update_person", "decision": "updated", "person_id": person_id})
        return person

    def delete_person(self, person_id: str) -> Person:
        with self.store.registration_lock(), self._writes:  # not while a compaction rebuilds the index
            person = self.store.delete_person(person_id)
        log.info("decision", extra={"op": "delete_person", "decision": "erased", "person_id": person_id,
                                    "faces": person.face_count})
        return person

    def face_crop(self, person_id: str, face_id: str) -> bytes:
        self.require_person(person_id)
        data = self.store.face_crop(person_id, face_id)
        if data is None:
            raise FaceNotFound(f"no stored crop for face {face_id!r}",
                               details={"person_id": person_id, "face_id": face_id})
        return data

    # --- matching -------------------------------------------------------------------------------------

    def detect(self, data: bytes, *, max_faces: int | None = None) -> Detection:
        return self.pipeline.detect(data, max_faces=max_faces)

    def check_enrollment(self, data: bytes) -> EnrollmentCheck:
        """What registering this image would say about its faces (nothing is embedded or stored)."""
        return self.pipeline.enrollment_check(data)

    def verify(self, person_id: str, image: bytes, *, threshold: float | None = None,
               reveal_unknown: bool = True) -> Verdict:
        """1:1 — is the largest face in ``image`` this person? Scored against the person's template.

        ``reveal_unknown=False`` is for a caller that may not learn who is enrolled: the image is worked on
        first, exactly as for an enrolled id, and an unknown id is then a non-match (otherwise an unknown id
        answered 404 at once and an enrolled one 400 for a broken image, which told them apart)."""
        threshold = self.effective_threshold(self.verify_threshold, threshold)
        if reveal_unknown:
            reference = self.store.template_of(person_id)  # person_not_found before any image work
            probe = self.pipeline.probes(image)[0]
        else:
            probe = self.pipeline.probes(image)[0]
            try:
                reference = self.store.template_of(person_id)
            except PersonNotFound:
                log.info("decision", extra={"op": "verify", "decision": "person_not_found", "person_id": person_id,
                                            "match": False})
                return Verdict(False, -1.0, threshold, [probe.face], person_id)
        similarity = float(reference @ probe.embedding)
        match = similarity >= threshold
        log.info("decision", extra={"op": "verify", "decision": "match" if match else "no_match",
                                    "person_id": person_id, "match": match,
                                    "similarity": round(similarity, 4), "threshold": round(threshold, 4)})
        return Verdict(match, similarity, threshold, [probe.face], person_id)

    def identify(self, image: bytes, *, top_k: int | None = None, all_faces: bool = False,
                 threshold: float | None = None, max_faces: int | None = None) -> Identification:
        """1:N — who is this? ``match`` only above the open-set threshold for the current gallery size."""
        top_k = top_k or self.policy.default_top_k
        if not 1 <= top_k <= self.policy.max_top_k:
            raise ValidationError(f"top_k must be within 1..{self.policy.max_top_k}", field="top_k")
        decision = self.open_set_decision()
        threshold = self.effective_threshold(decision.least_similarity, threshold)
        decision = replace(decision, floor=max(decision.floor, threshold))
        results = []
        for probe in self.pipeline.probes(image, all_faces=all_faces, max_faces=max_faces):
            # the second candidate is part of the decision, whatever top_k the caller wants shown
            candidates = self.store.nearest_persons(probe.embedding, max(top_k, 2))
            second = candidates[1].similarity if len(candidates) > 1 else None
            # what the best candidate needs depends on its template: more photos, a stricter threshold
            needed = decision.similarity_needed(second, candidates[0].photos if candidates else 1)
            match: Candidate | None = candidates[0] if candidates and candidates[0].similarity >= needed else None
            log.info("decision", extra={"op": "identify", "decision": "match" if match else "no_match",
                                        "match": match.person_id if match else None,
                                        "best_similarity": round(candidates[0].similarity, 4) if candidates else None,
                                        "threshold": round(needed, 4), "gallery_size": decision.gallery_size})
            results.append(IdentifiedFace(probe.face, match, candidates[:top_k], needed))
        return Identification(threshold, decision.gallery_size, decision.per_comparison_far,
                              self.policy.identify_target_far, results, decision)

    def compare(self, first: bytes, second: bytes, *, threshold: float | None = None) -> Verdict:
        """Two images, largest face each, nothing stored."""
        threshold = self.effective_threshold(self.verify_threshold, threshold)
        a, b = self.pipeline.probes(first, index=0)[0], self.pipeline.probes(second, index=1)[0]
        similarity = float(a.embedding @ b.embedding)
        return Verdict(similarity >= threshold, similarity, threshold, [a.face, b.face])
