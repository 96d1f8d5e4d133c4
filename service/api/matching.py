"""1:1 verify, 1:N identify, and compare (nothing stored)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..auth import require
from ..errors import ValidationError
from . import fields, inputs

bp = Blueprint("matching", __name__, url_prefix="/v1")


def _recognizer():
    return current_app.extensions["faceid"]


@bp.post("/verify")
@require("client")
def verify():
    values = inputs.fields()
    person_id = fields.text(values, "person_id", required=True, max_length=128)
    (image,) = inputs.images(at_most=1)
    return jsonify(_recognizer().verify(person_id, image, threshold=fields.number(values, "threshold")))


@bp.post("/identify")
@require("client")
def identify():
    recognizer = _recognizer()
    values = inputs.fields()
    (image,) = inputs.images(at_most=1)
    top_k = fields.integer(values, "top_k", default=recognizer.settings.default_top_k, low=1,
                           high=recognizer.settings.max_top_k)
    return jsonify(recognizer.identify(image, top_k=top_k, all_faces=fields.boolean(values, "all_faces"),
                                       threshold=fields.number(values, "threshold")))


@bp.post("/compare")
@require("client")
def compare():
    values = inputs.fields()
    images = inputs.images(at_most=2)
    if len(images) != 2:
        raise ValidationError("compare needs exactly two images", field="image",
                              details={"got": len(images)})
    return jsonify(_recognizer().compare(images[0], images[1], threshold=fields.number(values, "threshold")))
