"""The core use-cases, called by the HTTP layer and the bulk CLI alike: bytes in, decisions out.

One hop per layer: ``images`` decodes, ``faces`` detects, the embedder aligns and embeds, ``gallery`` stores
and searches; the decision (threshold, match) is made here and only here. Holds the long-lived models and the
store, loaded once per process and shared by every request thread. Knows nothing about HTTP.
"""
from __future__ import annotations

import io
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import calibration
from .config import Settings
from .embedder import Embedder, create_embedder
from .errors import DuplicateFace, LowQuality, MultipleFaces, NoFace, PersonExists, ValidationError
from .faces import Face, FaceDetector, crop_face
from .gallery import Gallery, NewFace, Person, StoredFace
from .images import decode_image
from .quality import QualityLimits, failures, measure

log = logging.getLogger("faceid.decisions")
PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
QUALITY_CROP = 160          # the crop blur is measured on (pixels)
STORED_CROP, STORED_CROP_MARGIN = 192, 64  # stored face crop: the face is the middle 128 px


@dataclass
class Detection:
    image_width: int
    image_height: int
    faces: list[Face]


@dataclass
class Probe:
    """One face of a query image, embedded."""
    face: Face
    embedding: np.ndarray


class Recognizer:
    def __init__(self, settings: Settings, *, with_store: bool = True) -> None:
        self.settings = settings
        self.detector = FaceDetector(max_side=settings.detect_max_side, min_face_size=settings.detect_min_face,
                                     thresholds=settings.detect_thresholds, threads=settings.detect_threads)
        self.embedder: Embedder = create_embedder(settings)
        self.with_store = with_store
        self.gallery: Gallery | None = None
        self.limits = QualityLimits(min_probability=settings.enroll_min_probability,
                                    min_face_size=settings.enroll_min_face_size,
                                    min_blur=settings.enroll_min_blur, max_yaw=settings.enroll_max_yaw,
                                    max_roll=settings.enroll_max_roll)
        self._verify_threshold = settings.verify_threshold or None

    def prepare(self) -> "Recognizer":
        """Load every model and open the store now: a broken model or store stops the start, and the first
        request does not pay for loading."""
        self.detector.prepare()
        self.embedder.prepare()
        if self.with_store and self._verify_threshold is None:  # deciding needs a calibrated threshold
            self._verify_threshold = calibration.verify_threshold(self.embedder.model_id)
        if self.with_store and self.gallery is None:
            self.gallery = Gallery.open(model_id=self.embedder.model_id, dim=self.embedder.dim,
                                        data_dir=self.settings.data_dir, chroma_url=self.settings.chroma_url)
            self.gallery.check_other_models()
        return self

    def close(self) -> None:
        if self.gallery is not None:
            self.gallery.close()
            self.gallery = None

    @property
    def ready(self) -> bool:
        return self.detector.ready and self.embedder.ready

    # --- thresholds -----------------------------------------------------------------------------------

    @property
    def verify_threshold(self) -> float:
        if self._verify_threshold is None:
            raise RuntimeError("no threshold: prepare() a recognizer with a store first")
        return self._verify_threshold

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

    def identify_threshold(self) -> tuple[float, float, int]:
        """(threshold, per-comparison FAR, gallery size): one comparison per enrolled person (template)."""
        people = self._gallery().person_count()
        threshold, far = calibration.identify_threshold(self.embedder.model_id, people,
                                                        self.settings.identify_target_far, self.verify_threshold)
        return threshold, far, people

    # --- pixels -> faces -> vectors -------------------------------------------------------------------

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, max_bytes=self.settings.max_image_bytes,
                            max_pixels=self.settings.max_image_pixels)

    def detect(self, data: bytes) -> Detection:
        rgb = self.decode(data)
        return Detection(image_width=rgb.shape[1], image_height=rgb.shape[0], faces=self.detector.detect(rgb))

    def probes(self, data: bytes, *, all_faces: bool = False, index: int | None = None) -> list[Probe]:
        """The largest face (or every face) of an image, embedded; ``no_face`` if there is none."""
        rgb = self.decode(data)
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFace(details={} if index is None else {"image_index": index})
        faces = faces if all_faces else faces[:1]
        return [Probe(f, e) for f, e in zip(faces, self.embedder.get(rgb, faces))]

    def _enrollment_face(self, data: bytes, index: int) -> NewFace:
        """Exactly one usable face that passes the quality gate, embedded, with its crop."""
        rgb = self.decode(data)
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFace("no face found in an enrollment image", details={"image_index": index})
        # Background faces far smaller than the subject do not make a selfie ambiguous.
        usable = [f for f in faces if f.probability >= self.limits.min_probability
                  and f.size >= max(self.limits.min_face_size, 0.5 * faces[0].size)]
        if len(usable) > 1:
            raise MultipleFaces(f"{len(usable)} faces found; an enrollment image must show exactly one person",
                                details={"image_index": index, "faces": len(usable)})
        face = usable[0] if usable else faces[0]
        # Quality is measured on one model-independent crop, so the limits mean the same for every model id.
        quality = measure(face, crop_face(rgb, face.box, QUALITY_CROP, self.settings.face_margin))
        failed = failures(quality, self.limits)
        if failed:
            raise LowQuality(f"the face fails the quality check(s): {', '.join(f['check'] for f in failed)}",
                             details={"image_index": index, "failed": failed})
        embedding = self.embedder.get(rgb, [face])[0]
        # The stored crop keeps context around the face, so it can be detected and re-aligned for any model
        # later (enroll reindex), not only for the one that made it.
        thumbnail = crop_face(rgb, face.box, STORED_CROP, STORED_CROP_MARGIN) if self.settings.store_face_crops else None
        return NewFace(embedding=embedding, box=face.to_dict()["box"], quality=quality,
                       crop_jpeg=None if thumbnail is None else _jpeg(thumbnail))

    # --- use-cases ------------------------------------------------------------------------------------

    def _gallery(self) -> Gallery:
        if self.gallery is None:
            raise RuntimeError("this recognizer was built without a store")
        return self.gallery

    def _check_duplicates(self, faces: Sequence[NewFace], person_id: str | None) -> None:
        if self.settings.duplicate_policy == "allow":
            return
        gallery = self._gallery()
        for i, face in enumerate(faces):
            hits = gallery.nearest_persons(face.embedding, 1, exclude=person_id)
            if hits and hits[0].similarity >= self.verify_threshold:
                other = hits[0]
                log.info("decision", extra={"op": "enroll", "decision": "duplicate_face",
                                            "other_person_id": other.person_id,
                                            "similarity": round(other.similarity, 4)})
                raise DuplicateFace(f"image {i} matches existing person {other.person_id!r}",
                                    details={"image_index": i, "person_id": other.person_id,
                                             "similarity": round(other.similarity, 4)})

    def enroll(self, *, images: Sequence[bytes], name: str, metadata: dict[str, Any] | None = None,
               person_id: str | None = None) -> tuple[Person, list[StoredFace]]:
        """Register a new person from one or more images: all or nothing."""
        person_id = person_id or uuid.uuid4().hex
        if not PERSON_ID.match(person_id):
            raise ValidationError("person_id: 1-128 characters, letters, digits and . _ : @ -",
                                  field="person_id")
        gallery = self._gallery()
        if gallery.get_person(person_id) is not None:  # before any image work; the gallery re-checks atomically
            raise PersonExists(f"a person with id {person_id!r} already exists", details={"person_id": person_id})
        faces = [self._enrollment_face(data, i) for i, data in enumerate(images)]
        self._check_duplicates(faces, None)
        person, stored = gallery.create_person(person_id=person_id, name=name, metadata=metadata or {},
                                               faces=faces)
        log.info("decision", extra={"op": "enroll", "decision": "registered", "person_id": person_id,
                                    "faces": len(stored)})
        return person, stored

    def add_faces(self, person_id: str, images: Sequence[bytes]) -> tuple[Person, list[StoredFace]]:
        gallery = self._gallery()
        gallery.require_person(person_id)
        faces = [self._enrollment_face(data, i) for i, data in enumerate(images)]
        self._check_duplicates(faces, person_id)
        person, stored = gallery.add_faces(person_id, faces)
        log.info("decision", extra={"op": "add_faces", "decision": "added", "person_id": person_id,
                                    "faces": len(stored)})
        return person, stored

    def verify(self, person_id: str, image: bytes, *, threshold: float | None = None) -> dict[str, Any]:
        """1:1 — is the largest face in ``image`` this person? Scored against the person's template."""
        gallery = self._gallery()
        reference = gallery.template_of(person_id)  # person_not_found before any image work
        threshold = self.effective_threshold(self.verify_threshold, threshold)
        probe = self.probes(image)[0]
        similarity = float(reference @ probe.embedding)
        match = similarity >= threshold
        log.info("decision", extra={"op": "verify", "person_id": person_id, "match": match,
                                    "similarity": round(similarity, 4), "threshold": round(threshold, 4)})
        return {"match": match, "similarity": round(similarity, 4), "threshold": round(threshold, 4),
                "person_id": person_id, "box": probe.face.to_dict()["box"]}

    def identify(self, image: bytes, *, top_k: int | None = None, all_faces: bool = False,
                 threshold: float | None = None) -> dict[str, Any]:
        """1:N — who is this? ``match`` only above the open-set threshold for the current gallery size."""
        top_k = top_k or self.settings.default_top_k
        if not 1 <= top_k <= self.settings.max_top_k:
            raise ValidationError(f"top_k must be within 1..{self.settings.max_top_k}", field="top_k")
        base, far, gallery_size = self.identify_threshold()
        threshold = self.effective_threshold(base, threshold)
        gallery = self._gallery()
        results = []
        for probe in self.probes(image, all_faces=all_faces):
            candidates = gallery.nearest_persons(probe.embedding, top_k)
            shaped = [{"person_id": c.person_id, "name": c.name, "similarity": round(c.similarity, 4)}
                      for c in candidates]
            match = shaped[0] if candidates and candidates[0].similarity >= threshold else None
            log.info("decision", extra={"op": "identify", "match": match["person_id"] if match else None,
                                        "best_similarity": shaped[0]["similarity"] if shaped else None,
                                        "threshold": round(threshold, 4), "gallery_size": gallery_size})
            results.append({"box": probe.face.to_dict()["box"], "match": match, "candidates": shaped})
        return {"threshold": round(threshold, 4), "gallery_size": gallery_size,
                "per_comparison_far": float(f"{far:.3g}"), "target_open_set_far": self.settings.identify_target_far,
                "faces": results}

    def compare(self, first: bytes, second: bytes, *, threshold: float | None = None) -> dict[str, Any]:
        """Two images, largest face each, nothing stored."""
        threshold = self.effective_threshold(self.verify_threshold, threshold)
        a, b = self.probes(first, index=0)[0], self.probes(second, index=1)[0]
        similarity = float(a.embedding @ b.embedding)
        return {"match": similarity >= threshold, "similarity": round(similarity, 4),
                "threshold": round(threshold, 4), "boxes": [a.face.to_dict()["box"], b.face.to_dict()["box"]]}


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()
