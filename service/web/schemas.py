"""The answers that are more than a model built from a record: what a key may see (``reveal``), links, and
values combined from several records. Every other answer is its model of ``models``, built in the view."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import url_for

from ..core.calibration import OpenSetDecision
from ..core.pipeline import EnrollmentCheck
from ..core.records import Detection, Identification, IndexState, Person, StoredFace, Verdict
from . import models as m


def detection(d: Detection) -> dict[str, Any]:
    return m.Detection.of(image=m.ImageSize(width=d.image_width, height=d.image_height), faces=d.faces)


def enrollment_check(c: EnrollmentCheck) -> dict[str, Any]:
    """POST /v1/quality: the detection, the face enrollment would take (an index into ``faces``), its quality,
    every check it fails, and the error registering this image would answer (``null`` when it would pass)."""
    problem = c.problem
    return m.EnrollmentCheck.of(
        image=m.ImageSize(width=c.detection.image_width, height=c.detection.image_height),
        faces=c.detection.faces, face_index=c.face, quality=c.quality, failed=c.failed,
        enrollable=problem is None, problem=problem)


def _rule(d: OpenSetDecision) -> m.OpenSetRule:
    return m.OpenSetRule(name=d.rule.name, beta=d.rule.beta, score_threshold=d.threshold,
                         score_threshold_by_photos={str(k): t for k, t in d.thresholds_by_photos().items()},
                         target_fpir=d.target_fpir, expected_fnir=d.expected_fnir)


def status(*, version: str, model: str, ready: bool, verify_threshold: float, decision: OpenSetDecision,
           records: str, index: str, state: IndexState) -> dict[str, Any]:
    """GET /v1/status: what an operator wants on one line."""
    return m.Status.of(version=version, model=model, ready=ready, gallery_size=decision.gallery_size,
                    thresholds=m.Thresholds(verify=verify_threshold, identify=decision.least_similarity),
                    identify_rule=_rule(decision),
                    store=m.StoreKinds(records=records, index=index,  # type: ignore[arg-type]
                                       index_generation=state.generation, index_lag=state.lag,
                                       index_centred=state.centred))


def person_with_faces(p: Person, faces: Iterable[StoredFace]) -> dict[str, Any]:
    """A face's crop link and photo hash are there only when the face has them."""
    items: list[dict[str, Any]] = []
    for f in faces:
        item: dict[str, Any] = {"id": f.id, "box": f.box, "quality": f.quality, "created_at": f.created_at}
        if f.has_crop:
            item["crop_url"] = url_for("persons.face_crop", person_id=p.id, face_id=f.id)
        if f.source_sha256:
            item["source_sha256"] = f.source_sha256
        items.append(item)
    return m.PersonWithFaces.of(person=p, faces=items)


def verification(v: Verdict, *, reveal: bool) -> dict[str, Any]:
    person_id = v.person_id or ""
    if not reveal:  # a score is what an attacker hill-climbs
        return m.VerifyDecision.of(match=v.match, person_id=person_id, box=v.faces[0])
    return m.Verification.of(match=v.match, similarity=v.similarity, threshold=v.threshold, person_id=person_id,
                          box=v.faces[0])


def comparison(v: Verdict, *, reveal: bool) -> dict[str, Any]:
    if not reveal:  # a score is what an attacker hill-climbs, here as on verify
        return m.CompareDecision.of(match=v.match, boxes=v.faces)
    return m.Comparison.of(match=v.match, similarity=v.similarity, threshold=v.threshold, boxes=v.faces)


def identification(result: Identification, *, reveal: bool) -> dict[str, Any]:
    if not reveal:  # the decision only: who matched, nothing about who else is enrolled
        return m.IdentifyDecision.of(faces=[{"box": f.face, "match": f.match} for f in result.faces])
    return m.Identification.of(
        threshold=result.threshold, gallery_size=result.gallery_size,
        per_comparison_far=float(f"{result.per_comparison_far:.3g}"),
        target_open_set_far=result.target_open_set_far, rule=_rule(result.decision),
        faces=[{"box": f.face, "match": f.match, "candidates": f.candidates,
                "threshold": result.threshold if f.needed is None else f.needed} for f in result.faces])


def readiness(model_id: str, model_ready: bool, store_ready: bool, draining: bool = False) -> dict[str, Any]:
    ok = model_ready and store_ready and not draining  # draining after SIGTERM: still serving, send nothing new
    return m.Ready.of(status="ready" if ok else "not_ready", model=model_id,
                   checks=m.ReadyChecks(model=model_ready, store=store_ready))


def error(code: str, message: str, details: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    return m.Error.of(error=m.ErrorBody(code=code, message=message, details=details, request_id=request_id))
