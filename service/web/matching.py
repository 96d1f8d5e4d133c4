"""1:1 verify, 1:N identify, and compare (nothing stored)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import ValidationError
from . import fields, inputs, schemas
from .auth import require, reveals_scores
from .context import get_recognizer

bp = Blueprint("matching", __name__, url_prefix="/v1")


@bp.post("/verify")
@require("verify")
def verify() -> Response:
    values = inputs.fields()
    person_id = fields.required_text(values, "person_id", max_length=128)
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(person_id, image, threshold=fields.number(values, "threshold"))
    return jsonify(schemas.verification(verdict, reveal=reveals_scores()))


@bp.post("/identify")
@require("identify")
def identify() -> Response:
    recognizer = get_recognizer()
    values = inputs.fields()
    (image,) = inputs.images(at_most=1)
    top_k = fields.integer(values, "top_k", default=recognizer.policy.default_top_k, low=1,
                           high=recognizer.policy.max_top_k)
    result = recognizer.identify(image, top_k=top_k, all_faces=fields.boolean(values, "all_faces"),
                                 threshold=fields.number(values, "threshold"))
    return jsonify(schemas.identification(result, reveal=reveals_scores()))


@bp.post("/compare")
@require("verify")
def compare() -> Response:
    values = inputs.fields()
    images = inputs.images(at_most=2)
    if len(images) != 2:
        raise ValidationError("compare needs exactly two images", field="image",
                              details={"got": len(images)})
    verdict = get_recognizer().compare(images[0], images[1], threshold=fields.number(values, "threshold"))
    return jsonify(schemas.comparison(verdict))
