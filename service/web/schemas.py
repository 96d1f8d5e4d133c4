"""The only place that shapes JSON: records and decisions from the core in, response bodies out. Scores are
rounded to 4 decimals and boxes to 0.1 px here and nowhere else."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import url_for

from ..core.keys import ApiKey
from ..core.pipeline import EnrollmentCheck
from ..core.records import LANDMARK_NAMES, Candidate, Detection, Face, Identification, Person, StoredFace, Verdict


def _score(x: float) -> float:
    return round(float(x), 4)


def face(f: Face) -> dict[str, Any]:
    return {"box": f.box_dict(),
            "landmarks": {name: [round(float(x), 1), round(float(y), 1)]
                          for name, (x, y) in zip(LANDMARK_NAMES, f.landmarks)},
            "probability": _score(f.probability)}


def detection(d: Detection) -> dict[str, Any]:
    return {"image": {"width": d.image_width, "height": d.image_height}, "faces": [face(f) for f in d.faces]}


def enrollment_check(c: EnrollmentCheck) -> dict[str, Any]:
    """POST /v1/quality: the detection, the face enrollment would take (an index into ``faces``), its quality,
    every check it fails, and the error registering this image would answer (``null`` when it would pass)."""
    problem = c.problem
    return {**detection(c.detection), "face_index": c.face, "quality": c.quality, "failed": c.failed,
            "enrollable": problem is None,
            "problem": None if problem is None else {"code": problem.code, "message": problem.message,
                                                      "details": problem.details}}


def status(*, version: str, model: str, ready: bool, gallery_size: int, verify_threshold: float,
           identify_threshold: float, records: str, index: str) -> dict[str, Any]:
    """GET /v1/status: what an operator wants on one line."""
    return {"version": version, "model": model, "ready": ready, "gallery_size": gallery_size,
            "thresholds": {"verify": _score(verify_threshold), "identify": _score(identify_threshold)},
            "store": {"records": records, "index": index}}


def person(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "metadata": p.metadata, "face_count": p.face_count,
            "created_at": p.created_at, "updated_at": p.updated_at}


def stored_faces(person_id: str, faces: Iterable[StoredFace]) -> list[dict[str, Any]]:
    out = []
    for f in faces:
        item: dict[str, Any] = {"id": f.id, "box": f.box, "quality": f.quality, "created_at": f.created_at}
        if f.has_crop:
            item["crop_url"] = url_for("persons.face_crop", person_id=person_id, face_id=f.id)
        out.append(item)
    return out


def person_with_faces(p: Person, faces: Iterable[StoredFace]) -> dict[str, Any]:
    return {"person": person(p), "faces": stored_faces(p.id, faces)}


def persons_page(people: list[Person], total: int, limit: int, offset: int,
                 next_cursor: str | None) -> dict[str, Any]:
    return {"items": [person(p) for p in people], "total": total, "limit": limit, "offset": offset,
            "next_cursor": next_cursor}


def verification(v: Verdict, *, reveal: bool) -> dict[str, Any]:
    if not reveal:
        return {"match": v.match, "person_id": v.person_id, "box": v.faces[0].box_dict()}
    return {"match": v.match, "similarity": _score(v.similarity), "threshold": _score(v.threshold),
            "person_id": v.person_id, "box": v.faces[0].box_dict()}


def comparison(v: Verdict) -> dict[str, Any]:
    return {"match": v.match, "similarity": _score(v.similarity), "threshold": _score(v.threshold),
            "boxes": [f.box_dict() for f in v.faces]}


def candidate(c: Candidate) -> dict[str, Any]:
    return {"person_id": c.person_id, "name": c.name, "similarity": _score(c.similarity)}


def identification(result: Identification, *, reveal: bool) -> dict[str, Any]:
    if not reveal:  # the decision only: who matched, nothing about who else is enrolled
        return {"faces": [{"box": f.face.box_dict(),
                           "match": {"person_id": f.match.person_id, "name": f.match.name} if f.match else None}
                          for f in result.faces]}
    return {"threshold": _score(result.threshold), "gallery_size": result.gallery_size,
            "per_comparison_far": float(f"{result.per_comparison_far:.3g}"),
            "target_open_set_far": result.target_open_set_far,
            "faces": [{"box": f.face.box_dict(), "match": candidate(f.match) if f.match else None,
                       "candidates": [candidate(c) for c in f.candidates]} for f in result.faces]}


def api_key(k: ApiKey) -> dict[str, Any]:
    """Never the secret or its hash: an answer that lists keys must not help anyone use them."""
    return {"id": k.id, "name": k.name, "scopes": list(k.scopes), "source": k.source,
            "created_at": k.created_at or None, "expires_at": k.expires_at, "last_used_at": k.last_used_at,
            "revoked_at": k.revoked_at, "replaces": k.replaces}


def error(code: str, message: str, details: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details, "request_id": request_id}}
