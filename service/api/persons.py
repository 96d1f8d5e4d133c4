"""Persons: register (client), add faces (client), and the admin resource (list, get, edit, delete)."""
from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from ..auth import require
from ..errors import FaceNotFound, ValidationError
from . import fields, inputs

bp = Blueprint("persons", __name__, url_prefix="/v1/persons")
MAX_LIMIT = 100


def _recognizer():
    return current_app.extensions["faceid"]


def _faces_json(person_id: str, faces) -> list[dict]:
    out = []
    for f in faces:
        item = f.to_dict()
        if f.has_crop:
            item["crop_url"] = url_for("persons.face_crop", person_id=person_id, face_id=f.id)
        out.append(item)
    return out


@bp.post("")
@require("client")
def register():
    recognizer = _recognizer()
    settings = recognizer.settings
    values = inputs.fields()
    images = inputs.images(at_most=settings.max_images_per_request)
    person, faces = recognizer.enroll(
        images=images, name=fields.text(values, "name", required=True),
        metadata=fields.metadata(values, max_bytes=settings.max_metadata_bytes),
        person_id=fields.text(values, "person_id", max_length=128))
    return jsonify({"person": person.to_dict(), "faces": _faces_json(person.id, faces)}), 201


@bp.post("/<person_id>/faces")
@require("client")
def add_faces(person_id: str):
    recognizer = _recognizer()
    images = inputs.images(at_most=recognizer.settings.max_images_per_request)
    person, faces = recognizer.add_faces(person_id, images)
    return jsonify({"person": person.to_dict(), "faces": _faces_json(person.id, faces)}), 201


@bp.get("")
@require("admin")
def list_persons():
    values = request.args
    limit = fields.integer(values, "limit", default=20, low=1, high=MAX_LIMIT)
    offset = fields.integer(values, "offset", default=0, low=0, high=10**9)
    if values.get("cursor"):
        offset = _decode_cursor(values["cursor"])
    q = fields.text(values, "q", max_length=200)
    people, total = _recognizer().gallery.list_persons(limit=limit, offset=offset, q=q)
    next_offset = offset + len(people)
    return jsonify({"items": [p.to_dict() for p in people], "total": total, "limit": limit, "offset": offset,
                    "next_cursor": _encode_cursor(next_offset) if next_offset < total else None})


@bp.get("/<person_id>")
@require("admin")
def get_person(person_id: str):
    gallery = _recognizer().gallery
    person = gallery.require_person(person_id)
    return jsonify({"person": person.to_dict(), "faces": _faces_json(person_id, gallery.faces_of(person_id))})


@bp.patch("/<person_id>")
@require("admin")
def update_person(person_id: str):
    recognizer = _recognizer()
    values = inputs.fields()
    unknown = sorted(set(values) - {"name", "metadata"})
    if unknown:
        raise ValidationError(f"only 'name' and 'metadata' can be changed, not {', '.join(unknown)}",
                              field=unknown[0])
    name = fields.text(values, "name")
    metadata = fields.metadata(values, max_bytes=recognizer.settings.max_metadata_bytes)
    if name is None and metadata is None:
        raise ValidationError("send 'name' and/or 'metadata'", field="name")
    person = recognizer.gallery.update_person(person_id, name=name, metadata=metadata)
    return jsonify({"person": person.to_dict()})


@bp.delete("/<person_id>")
@require("admin")
def delete_person(person_id: str):
    person = _recognizer().gallery.delete_person(person_id)
    return jsonify({"deleted": {"person_id": person.id, "faces": person.face_count}})


@bp.delete("/<person_id>/faces/<face_id>")
@require("admin")
def delete_face(person_id: str, face_id: str):
    gallery = _recognizer().gallery
    gallery.require_person(person_id)
    person = gallery.delete_face(person_id, face_id)
    if person is None:
        raise FaceNotFound(f"person {person_id!r} has no face {face_id!r}",
                           details={"person_id": person_id, "face_id": face_id})
    return jsonify({"deleted": {"person_id": person_id, "face_id": face_id}, "person": person.to_dict()})


@bp.get("/<person_id>/faces/<face_id>/crop")
@require("admin")
def face_crop(person_id: str, face_id: str):
    gallery = _recognizer().gallery
    gallery.require_person(person_id)
    data = gallery.face_crop(person_id, face_id)
    if data is None:
        raise FaceNotFound(f"no stored crop for face {face_id!r}", details={"person_id": person_id,
                                                                            "face_id": face_id})
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
