"""Persons: register (client), add faces (client), and the admin resource (list, get, edit, delete)."""
from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, g, jsonify, request

from ..errors import Forbidden, ValidationError
from . import fields, inputs, schemas
from .auth import require
from .context import get_recognizer, get_settings

bp = Blueprint("persons", __name__, url_prefix="/v1/persons")
MAX_LIMIT = 100


@bp.post("")
@require("client")
def register() -> tuple[Response, int]:
    settings = get_settings()
    values = inputs.fields()
    images = inputs.images(at_most=settings.max_images_per_request)
    person, faces = get_recognizer().enroll(
        images=images, name=fields.required_text(values, "name"),
        metadata=fields.metadata(values, max_bytes=settings.max_metadata_bytes),
        person_id=fields.text(values, "person_id", max_length=128))
    return jsonify(schemas.person_with_faces(person, faces)), 201


@bp.post("/<person_id>/faces")
@require("client")
def add_faces(person_id: str) -> tuple[Response, int]:
    images = inputs.images(at_most=get_settings().max_images_per_request)
    allow_mismatch = fields.boolean(inputs.fields(), "allow_mismatch")
    if allow_mismatch and g.scope != "admin":
        raise Forbidden("only an admin key may add a face that does not match the person",
                        details={"required_scope": "admin", "field": "allow_mismatch"})
    person, faces = get_recognizer().add_faces(person_id, images, allow_mismatch=allow_mismatch)
    return jsonify(schemas.person_with_faces(person, faces)), 201


@bp.get("")
@require("admin")
def list_persons() -> Response:
    values = request.args
    limit = fields.integer(values, "limit", default=20, low=1, high=MAX_LIMIT)
    offset = fields.integer(values, "offset", default=0, low=0, high=10**9)
    if values.get("cursor"):
        offset = _decode_cursor(values["cursor"])
    q = fields.text(values, "q", max_length=200)
    people, total = get_recognizer().list_persons(limit=limit, offset=offset, q=q)
    next_offset = offset + len(people)
    cursor = _encode_cursor(next_offset) if next_offset < total else None
    return jsonify(schemas.persons_page(people, total, limit, offset, cursor))


@bp.get("/<person_id>")
@require("admin")
def get_person(person_id: str) -> Response:
    person, faces = get_recognizer().person_faces(person_id)
    return jsonify(schemas.person_with_faces(person, faces))


@bp.patch("/<person_id>")
@require("admin")
def update_person(person_id: str) -> Response:
    values = inputs.fields()
    unknown = sorted(set(values) - {"name", "metadata"})
    if unknown:
        raise ValidationError(f"only 'name' and 'metadata' can be changed, not {', '.join(unknown)}",
                              field=unknown[0])
    name = fields.text(values, "name")
    metadata = fields.metadata(values, max_bytes=get_settings().max_metadata_bytes)
    if name is None and metadata is None:
        raise ValidationError("send 'name' and/or 'metadata'", field="name")
    person = get_recognizer().update_person(person_id, name=name, metadata=metadata)
    return jsonify({"person": schemas.person(person)})


@bp.delete("/<person_id>")
@require("admin")
def delete_person(person_id: str) -> Response:
    person = get_recognizer().delete_person(person_id)
    return jsonify({"deleted": {"person_id": person.id, "faces": person.face_count}})


@bp.delete("/<person_id>/faces/<face_id>")
@require("admin")
def delete_face(person_id: str, face_id: str) -> Response:
    person = get_recognizer().delete_face(person_id, face_id)
    return jsonify({"deleted": {"person_id": person_id, "face_id": face_id}, "person": schemas.person(person)})


@bp.get("/<person_id>/faces/<face_id>/crop")
@require("admin")
def face_crop(person_id: str, face_id: str) -> Response:
    data = get_recognizer().face_crop(person_id, face_id)
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError
        offset = int(raw[2:])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("'cursor' is not a cursor this service issued", field="cursor") from None
