"""Liveness and readiness, without an API key (load balancers and orchestrators call them)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..lifecycle import draining
from . import models, schemas
from .context import get_recognizer
from .openapi import operation

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation("Liveness: the process answers", rate_limited=False, responses={200: models.Alive})
def healthz() -> Response:
    return jsonify(models.Alive.of(status="ok"))


@bp.get("/readyz")
@operation("Readiness: the models are loaded and the store answers", rate_limited=False,
           responses={200: models.Ready, 503: models.Ready})
def readyz() -> tuple[Response, int]:
    """Ready when the models are loaded and the store answers, and not while draining after SIGTERM."""
    recognizer = get_recognizer()
    body = schemas.readiness(recognizer.model_id, recognizer.ready, recognizer.store_answers(), draining.is_set())
    return jsonify(body), 200 if body["status"] == "ready" else 503
