"""Liveness and readiness, without an API key (load balancers and orchestrators call them)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    recognizer = current_app.extensions["faceid"]
    checks = {"model": recognizer.ready}
    ok = all(checks.values())
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks,
                    "model": recognizer.embedder.model_id}), 200 if ok else 503
