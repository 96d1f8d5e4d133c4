"""The records that cross the layers: what a detector finds, what the store keeps, what a decision says.

Plain dataclasses in domain terms: no Chroma, SQL or HTTP type crosses a layer. JSON shaping (rounding, field
names) happens in ``service.web.schemas`` and nowhere else.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .calibration import OpenSetDecision

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def iso(moment: datetime) -> str:
    """The one timestamp format of records, keys and the audit trail: UTC to the millisecond, ``Z``-suffixed,
    so that the strings sort as the times do (expiry and retention compare them as strings)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso(shift_s: float = 0.0) -> str:
    """Now (or ``shift_s`` seconds from now) as ``iso``."""
    return iso(datetime.now(UTC) + timedelta(seconds=shift_s))


@dataclass(frozen=True)
class IndexState:
    """Where the search index stands: its generation, how many committed changes it has not applied yet
    (search covers those from the records meanwhile), and whether it ranks in the model's centred space."""
    generation: int
    lag: int
    centred: bool


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the decoded (upright) image."""
    box: np.ndarray          # x1, y1, x2, y2 (float)
    landmarks: np.ndarray    # (5, 2) in LANDMARK_NAMES order
    probability: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        """The shorter side of the box: what limits how much identity detail the face carries."""
        return min(self.width, self.height)

    def box_dict(self) -> dict[str, float]:
        """The box as stored with an enrolled face (x, y, width, height; 0.1 px)."""
        return {"x": round(float(self.box[0]), 1), "y": round(float(self.box[1]), 1),
                "width": round(self.width, 1), "height": round(self.height, 1)}


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


@dataclass
class Person:
    id: str
    name: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    face_count: int = 0


@dataclass
class NewFace:
    """A face ready to store: the recognizer fills it, the store persists it."""
    embedding: np.ndarray
    box: dict[str, float]
    quality: dict[str, float]
    crop_jpeg: bytes | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source_sha256: str | None = None  # of the uploaded photo (``photo_hash``): one photo, one face per person


@dataclass
class StoredFace:
    id: str
    person_id: str
    created_at: str
    box: dict[str, float]
    quality: dict[str, float]
    has_crop: bool
    embedding: np.ndarray | None = None
    source_sha256: str | None = None  # None for faces enrolled before the hash was kept


def photo_hash(data: bytes) -> str:
    """The identity of an uploaded photo: what a bulk import compares to skip photos a person already has."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Candidate:
    person_id: str
    name: str
    similarity: float
    photos: int  # faces in the person's template: identify's threshold depends on it (``IdentifyRule``)


@dataclass
class Verdict:
    """A 1:1 decision (verify, compare)."""
    match: bool
    similarity: float
    threshold: float
    faces: list[Face]
    person_id: str | None = None


@dataclass
class IdentifiedFace:
    face: Face
    match: Candidate | None
    candidates: list[Candidate]
    needed: float | None = None  # the similarity the best candidate needed (the rule weighs the second too)


@dataclass
class Identification:
    """A 1:N answer: per face, the nearest people and the match above the open-set threshold, if any."""
    threshold: float
    gallery_size: int
    per_comparison_far: float
    target_open_set_far: float
    faces: list[IdentifiedFace]
    decision: OpenSetDecision  # the rule it was decided with, and what it promises
