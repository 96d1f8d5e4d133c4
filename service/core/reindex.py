"""Moving everyone to another model id without asking anyone for a new selfie: each stored face crop is
re-detected and embedded with the new model, and the person is created again in the new model's store."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .pipeline import FacePipeline
from .ports import FaceStore, every_person
from .records import NewFace
from .vectors import template


@dataclass
class ReindexResult:
    moved: int = 0
    without_crops: int = 0
    source_dropped: bool = False


def reindex(pipeline: FacePipeline, source: FaceStore, target: FaceStore,
            report: Callable[[dict[str, Any]], None]) -> ReindexResult:
    """Persons without stored crops cannot be carried over and are reported; the source store is erased only
    when everyone moved: its vectors are biometric data nobody uses any more, and while they exist the service
    refuses to start (a store holding another model's people)."""
    result = ReindexResult()
    for person in every_person(source):
        faces = []
        for stored in source.faces_of(person.id):
            crop = source.face_crop(person.id, stored.id)
            if crop is None:
                continue
            embedding = pipeline.reembed_crop(crop)
            if embedding is None:
                report({"person_id": person.id, "face_id": stored.id, "status": "skipped",
                        "why": "no face found again in the stored crop"})
                continue
            faces.append(NewFace(embedding=embedding, box=stored.box, quality=stored.quality, crop_jpeg=crop,
                                 source_sha256=stored.source_sha256))  # an import re-run still skips it
        if not faces or target.get_person(person.id) is not None:
            result.without_crops += not faces
            report({"person_id": person.id, "status": "skipped",
                    "why": "no stored crops" if not faces else "already in target"})
            continue
        with target.registration_lock():  # as every registration: a rebuild's snapshot never sees it half-way
            target.create_person(person_id=person.id, name=person.name, metadata=person.metadata, faces=faces,
                                 template=template([f.embedding for f in faces]))
        result.moved += 1
    if result.without_crops == 0:
        source.drop()
        result.source_dropped = True
    return result
