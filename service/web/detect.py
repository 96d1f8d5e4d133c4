"""POST /v1/detect: every face in one image with box, landmarks and probability, largest first."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import TooManyFaces
from . import bodies, inputs, models, schemas
from .auth import require
from .context import get_recognizer, get_settings
from .openapi import operation

bp = Blueprint("detect", __name__, url_prefix="/v1")


@bp.post("/detect")
@operation("Every face: box, 5 landmarks, probability; largest first",
           body=bodies.OneImage, responses={200: models.Detection},
           errors=[TooManyFaces])
@require("enroll", "verify", "identify")  # any working key: it reveals no one
def detect() -> Response:
    (data,) = inputs.images(at_most=1)
    detection = get_recognizer().detect(data, max_faces=get_settings().limits.max_faces_per_request)
    return jsonify(schemas.detection(detection))
