"""Persons: register and add faces (scope ``enroll``), and the admin resource (list, get, edit, delete)."""
from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, Response, jsonify, request

from .. import errors as e
from ..core.text import identifier
from ..errors import Forbidden, ValidationError
from . import bodies, inputs, models, schemas
from .auth import is_admin, require
from .context import get_recognizer, get_settings
from .openapi import operation

bp = Blueprint("persons", __name__, url_prefix="/v1/persons")


@bp.post("")
@operation("Register a person from one or more images (all or nothing)", body=bodies.Register,
           responses={201: models.PersonWithFaces},
           errors=[e.PersonExists, e.DuplicateFace, e.DuplicatePhoto, e.NoFace, e.MultipleFaces, e.LowQuality,
                   e.StoreUnavailable],
           description="Every image must hold exactly one usable face. Unless the key is an admin key, "
                       "`duplicate_face` does not say who.")
@require("enroll")
def register() -> tuple[Response, int]:
    settings = get_settings()  # the cheap checks before any image work
    body = bodies.parse(bodies.Register, inputs.fields(), max_metadata_bytes=settings.limits.max_metadata_bytes)
    images = inputs.images(at_most=settings.limits.max_images_per_request)
    person, faces = get_recognizer().enroll(images=images, name=body.name, metadata=body.metadata,
                                            person_id=body.person_id)
    return jsonify(schemas.person_with_faces(person, faces)), 201


@bp.post("/<person_id>/faces")
@operation("Add faces to a person: each must match them", body=bodies.AddFaces,
           responses={201: models.PersonWithFaces},
           errors=[e.Forbidden, e.PersonNotFound, e.DuplicateFace, e.DuplicatePhoto, e.NoFace, e.MultipleFaces,
                   e.LowQuality, e.FaceMismatch, e.StoreUnavailable],
           description="403 `forbidden` for `allow_mismatch` without an admin key.")
@require("enroll")
def add_faces(person_id: str) -> tuple[Response, int]:
    allow_mismatch = bodies.parse(bodies.AddFaces, inputs.fields()).allow_mismatch
    images = inputs.images(at_most=get_settings().limits.max_images_per_request)
    if allow_mismatch and not is_admin():
        raise Forbidden("only an admin key may add a face that does not match the person",
                        details={"required_scope": "admin", "field": "allow_mismatch"})
    person, faces = get_recognizer().add_faces(person_id, images, allow_mismatch=allow_mismatch)
    return jsonify(schemas.person_with_faces(person, faces)), 201


@bp.get("")
@operation("List persons, a page at a time", query=bodies.PersonsQuery,
           responses={200: models.PersonsPage}, errors=[e.StoreUnavailable])
@require("admin")
def list_persons() -> Response:
    """Pages by keyset: ``next_cursor`` names the last person shown, so a page costs the same anywhere in a
    gallery of millions (``offset`` still works, for small jumps)."""
    query = bodies.parse(bodies.PersonsQuery, request.args)
    limit, offset = query.limit, query.offset
    after = _decode_cursor(query.cursor) if query.cursor else None
    people, total = get_recognizer().list_persons(limit=limit + 1, offset=offset, q=query.q, after=after)
    more, people = len(people) > limit, people[:limit]
    cursor = _encode_cursor(people[-1].created_at, people[-1].id) if more else None
    return jsonify(models.PersonsPage.of(items=people, total=total, limit=limit, offset=offset,
                                      next_cursor=cursor))


@bp.get("/<person_id>")
@operation("A person and their faces", responses={200: models.PersonWithFaces},
           errors=[e.PersonNotFound, e.StoreUnavailable])
@require("admin")
def get_person(person_id: str) -> Response:
    person, faces = get_recognizer().person_faces(person_id)
    return jsonify(schemas.person_with_faces(person, faces))


@bp.patch("/<person_id>")
@operation("Change name and/or metadata", body=bodies.PersonPatch,
           responses={200: models.PersonReply}, errors=[e.PersonNotFound, e.StoreUnavailable])
@require("admin")
def update_person(person_id: str) -> Response:
    body = bodies.parse(bodies.PersonPatch, inputs.fields(),
                        max_metadata_bytes=get_settings().limits.max_metadata_bytes)
    if body.name is None and body.metadata is None:
        raise ValidationError("send 'name' and/or 'metadata'", field="name")
    person = get_recognizer().update_person(person_id, name=body.name, metadata=body.metadata)
    return jsonify(models.PersonReply.of(person=person))


@bp.delete("/<person_id>")
@operation("Erase the person with every face, crop and embedding",
           responses={200: models.PersonDeleted}, errors=[e.PersonNotFound, e.StoreUnavailable])
@require("admin")
def delete_person(person_id: str) -> Response:
    person = get_recognizer().delete_person(person_id)
    deleted = models.DeletedPerson(person_id=person.id, faces=person.face_count)
    return jsonify(models.PersonDeleted.of(deleted=deleted))


@bp.delete("/<person_id>/faces/<face_id>")
@operation("Delete one face (not the person's last)", responses={200: models.FaceDeleted},
           errors=[e.ValidationError, e.PersonNotFound, e.FaceNotFound, e.StoreUnavailable])
@require("admin")
def delete_face(person_id: str, face_id: str) -> Response:
    person = get_recognizer().delete_face(person_id, face_id)
    return jsonify(models.FaceDeleted.of(deleted=models.DeletedFace(person_id=person_id, face_id=face_id),
                                      person=person))


@bp.get("/<person_id>/faces/<face_id>/crop")
@operation("The stored aligned face crop", responses={200: "image/jpeg"},
           errors=[e.PersonNotFound, e.FaceNotFound, e.StoreUnavailable])
@require("admin")
def face_crop(person_id: str, face_id: str) -> Response:
    data = get_recognizer().face_crop(person_id, face_id)
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


def _encode_cursor(created_at: str, person_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(["k", created_at, person_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(raw, list) and len(raw) == 3 and raw[0] == "k"
                and all(isinstance(v, str) and identifier(v, "cursor") == v for v in raw[1:])):
            raise ValueError
        return raw[1], raw[2]
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValidationError("'cursor' is not a cursor this service issued", field="cursor") from None
