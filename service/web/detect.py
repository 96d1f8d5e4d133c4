"""POST /v1/detect: every face in one image with box, landmarks and probability, largest first."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from . import inputs, schemas
from .auth import require
from .context import get_recognizer

bp = Blueprint("detect", __name__, url_prefix="/v1")


@bp.post("/detect")
@require("enroll", "verify", "identify")  # any working key: it reveals no one
def detect() -> Response:
    (data,) = inputs.images(at_most=1)
    return jsonify(schemas.detection(get_recognizer().detect(data)))
