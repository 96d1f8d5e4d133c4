"""POST /v1/detect: every face in one image with box, landmarks and probability, largest first."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..auth import require
from . import inputs

bp = Blueprint("detect", __name__, url_prefix="/v1")


@bp.post("/detect")
@require("client")
def detect():
    (data,) = inputs.images(at_most=1)
    result = current_app.extensions["faceid"].detect(data)
    return jsonify({"image": {"width": result.image_width, "height": result.image_height},
                    "faces": [f.to_dict() for f in result.faces]})
