"""Liveness and readiness, without an API key (load balancers and orchestrators call them)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import StoreUnavailable
from .context import get_recognizer

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the models are loaded and the store answers."""
    recognizer = get_recognizer()
    try:
        store = recognizer.store.heartbeat()
    except StoreUnavailable:
        store = False
    checks = {"model": recognizer.ready, "store": bool(store)}
    ok = all(checks.values())
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks,
                    "model": recognizer.model_id}), 200 if ok else 503
