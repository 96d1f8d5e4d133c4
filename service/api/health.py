"""Liveness and readiness, without an API key (load balancers and orchestrators call them)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..errors import StoreUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when the models are loaded and the store answers."""
    recognizer = current_app.extensions["faceid"]
    try:
        store = recognizer.gallery is not None and recognizer.gallery.heartbeat()
    except StoreUnavailable:
        store = False
    checks = {"model": recognizer.ready, "store": bool(store)}
    ok = all(checks.values())
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks,
                    "model": recognizer.embedder.model_id}), 200 if ok else 503
