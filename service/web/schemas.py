"""The only place that shapes JSON: records and decisions from the core in, response bodies out. Scores are
rounded to 4 decimals and boxes to 0.1 px here and nowhere else. Every body is built as its model in
``models`` (the one the API description publishes), so a body that does not fit its description fails here."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import url_for

from ..core.calibration import OpenSetDecision
from ..core.keys import ApiKey
from ..core.pipeline import EnrollmentCheck
from ..core.records import (
    LANDMARK_NAMES,
    Candidate,
    Detection,
    Face,
    Identification,
    IndexState,
    Person,
    StoredFace,
    Verdict,
)
from . import models as m


def _score(x: float) -> float:
    return round(float(x), 4)


def _body(model: m.Reply) -> dict[str, Any]:
    """The JSON body of ``model``: the fields it was given (an optional field left out stays out)."""
    return model.model_dump(mode="json", exclude_unset=True)


def _box(f: Face) -> m.Box:
    return m.Box(**f.box_dict())


def _face(f: Face) -> m.DetectedFace:
    return m.DetectedFace(
        box=_box(f), probability=_score(f.probability),
        landmarks=m.Landmarks(**{name: (round(float(x), 1), round(float(y), 1))
                                 for name, (x, y) in zip(LANDMARK_NAMES, f.landmarks)}))


def detection(d: Detection) -> dict[str, Any]:
    return _body(m.Detection(image=m.ImageSize(width=d.image_width, height=d.image_height),
                             faces=[_face(f) for f in d.faces]))


def _person(p: Person) -> m.Person:
    return m.Person(id=p.id, name=p.name, metadata=p.metadata, face_count=p.face_count, created_at=p.created_at,
                    updated_at=p.updated_at)


def enrollment_check(c: EnrollmentCheck) -> dict[str, Any]:
    """POST /v1/quality: the detection, the face enrollment would take (an index into ``faces``), its quality,
    every check it fails, and the error registering this image would answer (``null`` when it would pass)."""
    problem = c.problem
    return _body(m.EnrollmentCheck(
        image=m.ImageSize(width=c.detection.image_width, height=c.detection.image_height),
        faces=[_face(f) for f in c.detection.faces], face_index=c.face, quality=c.quality,
        failed=[m.FailedCheck.model_validate(f) for f in c.failed], enrollable=problem is None,
        problem=None if problem is None else m.Problem(code=problem.code, message=problem.message,
                                                      details=problem.details)))


def _rule(d: OpenSetDecision) -> m.OpenSetRule:
    return m.OpenSetRule(name=d.rule.name, beta=d.rule.beta, score_threshold=_score(d.threshold),
                         score_threshold_by_photos={str(k): _score(t) for k, t in d.thresholds_by_photos().items()},
                         target_fpir=d.target_fpir, expected_fnir=d.expected_fnir)


def status(*, version: str, model: str, ready: bool, verify_threshold: float, decision: OpenSetDecision,
           records: str, index: str, state: IndexState) -> dict[str, Any]:
    """GET /v1/status: what an operator wants on one line."""
    return _body(m.Status(version=version, model=model, ready=ready, gallery_size=decision.gallery_size,
                          thresholds=m.Thresholds(verify=_score(verify_threshold),
                                                  identify=_score(decision.least_similarity)),
                          identify_rule=_rule(decision),
                          store=m.StoreKinds(records=records, index=index,  # type: ignore[arg-type]
                                             index_generation=state.generation, index_lag=state.lag,
                                             index_centred=state.centred)))


def person(p: Person) -> dict[str, Any]:
    return _body(m.PersonReply(person=_person(p)))


def _stored_faces(person_id: str, faces: Iterable[StoredFace]) -> list[m.StoredFace]:
    out = []
    for f in faces:
        item = m.StoredFace(id=f.id, box=m.Box(**f.box), quality=f.quality, created_at=f.created_at)
        if f.has_crop:
            item.crop_url = url_for("persons.face_crop", person_id=person_id, face_id=f.id)
        if f.source_sha256:
            item.source_sha256 = f.source_sha256
        out.append(item)
    return out


def person_with_faces(p: Person, faces: Iterable[StoredFace]) -> dict[str, Any]:
    return _body(m.PersonWithFaces(person=_person(p), faces=_stored_faces(p.id, faces)))


def persons_page(people: list[Person], total: int, limit: int, offset: int,
                 next_cursor: str | None) -> dict[str, Any]:
    return _body(m.PersonsPage(items=[_person(p) for p in people], total=total, limit=limit, offset=offset,
                               next_cursor=next_cursor))


def person_deleted(p: Person) -> dict[str, Any]:
    return _body(m.PersonDeleted(deleted=m.DeletedPerson(person_id=p.id, faces=p.face_count)))


def face_deleted(person_id: str, face_id: str, p: Person) -> dict[str, Any]:
    return _body(m.FaceDeleted(deleted=m.DeletedFace(person_id=person_id, face_id=face_id), person=_person(p)))


def verification(v: Verdict, *, reveal: bool) -> dict[str, Any]:
    person_id = v.person_id or ""
    if not reveal:
        return _body(m.VerifyDecision(match=v.match, person_id=person_id, box=_box(v.faces[0])))
    return _body(m.Verification(match=v.match, similarity=_score(v.similarity), threshold=_score(v.threshold),
                                person_id=person_id, box=_box(v.faces[0])))


def comparison(v: Verdict, *, reveal: bool) -> dict[str, Any]:
    if not reveal:  # a score is what an attacker hill-climbs, here as on verify
        return _body(m.CompareDecision(match=v.match, boxes=[_box(f) for f in v.faces]))
    return _body(m.Comparison(match=v.match, similarity=_score(v.similarity), threshold=_score(v.threshold),
                              boxes=[_box(f) for f in v.faces]))


def _candidate(c: Candidate) -> m.Candidate:
    return m.Candidate(person_id=c.person_id, name=c.name, similarity=_score(c.similarity))


def identification(result: Identification, *, reveal: bool) -> dict[str, Any]:
    if not reveal:  # the decision only: who matched, nothing about who else is enrolled
        return _body(m.IdentifyDecision(faces=[
            m.DecidedFace(box=_box(f.face),
                          match=m.MatchRef(person_id=f.match.person_id, name=f.match.name) if f.match else None)
            for f in result.faces]))
    return _body(m.Identification(
        threshold=_score(result.threshold), gallery_size=result.gallery_size,
        per_comparison_far=float(f"{result.per_comparison_far:.3g}"),
        target_open_set_far=result.target_open_set_far, rule=_rule(result.decision),
        faces=[m.IdentifiedFace(box=_box(f.face), match=_candidate(f.match) if f.match else None,
                                candidates=[_candidate(c) for c in f.candidates],
                                threshold=_score(result.threshold if f.needed is None else f.needed))
               for f in result.faces]))


def alive() -> dict[str, Any]:
    return _body(m.Alive(status="ok"))


def readiness(model_id: str, model_ready: bool, store_ready: bool, draining: bool = False) -> dict[str, Any]:
    ok = model_ready and store_ready and not draining  # draining after SIGTERM: still serving, send nothing new
    return _body(m.Ready(status="ready" if ok else "not_ready", model=model_id,
                         checks=m.ReadyChecks(model=model_ready, store=store_ready)))


def _api_key(k: ApiKey) -> m.ApiKey:
    """Never the secret or its hash: an answer that lists keys must not help anyone use them."""
    return m.ApiKey(id=k.id, name=k.name, scopes=list(k.scopes), source=k.source,  # type: ignore[arg-type]
                    created_at=k.created_at or None, expires_at=k.expires_at, last_used_at=k.last_used_at,
                    revoked_at=k.revoked_at, replaces=k.replaces)


def api_key(k: ApiKey) -> dict[str, Any]:
    return _body(m.KeyReply(key=_api_key(k)))


def api_keys(keys: Iterable[ApiKey]) -> dict[str, Any]:
    return _body(m.KeyList(items=[_api_key(k) for k in keys]))


def key_created(k: ApiKey, secret: str) -> dict[str, Any]:
    return _body(m.KeyCreated(key=_api_key(k), secret=secret))


def key_rotated(new: ApiKey, secret: str, old: ApiKey) -> dict[str, Any]:
    return _body(m.KeyRotated(key=_api_key(new), secret=secret, replaced=_api_key(old)))


def audit_page(events: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return _body(m.AuditPage(items=[m.AuditEvent(**e) for e in events], next_cursor=next_cursor))


def import_runs(runs: list[m.ImportRun]) -> dict[str, Any]:
    return _body(m.ImportRuns(items=runs))


def import_received(run_id: str, recorded: bool) -> dict[str, Any]:
    return _body(m.ImportReceived(run_id=run_id, recorded=recorded))


def error(code: str, message: str, details: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    return _body(m.Error(error=m.ErrorBody(code=code, message=message, details=details, request_id=request_id)))
