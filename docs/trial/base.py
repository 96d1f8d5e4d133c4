"""The trial's app factory: ``service.web.create_app`` with an app class of the library's and the two ported
routes in place of main's ``matching`` and ``persons`` blueprints (the other routes of those two blueprints
are left out: the trial compares verify and list_persons only). Not part of the service; run by
``harness.py`` with ``PYTHONPATH=/tmp/trialpkgs:.``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask

from service.compose import Service
from service.config import Settings
from service.web import admin, audit, context, detect, docs, errors, health, imports, keys, limits, requests
from service.web import metrics as prometheus


def assemble(app: Flask, settings: Settings, service: Service, ported: Iterable[Blueprint],
             register: Any = None) -> Flask:
    """What create_app does, minus logging setup, the compactor and closing (the service is shared with
    main's app, so both answer from the same gallery)."""
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context.init_app(app, settings, service.recognizer, service.keys, service.audit)
    requests.init_app(app)
    prometheus.init_app(app)
    errors.init_app(app)
    for blueprint in (health.bp, detect.bp, keys.bp, audit.bp, imports.bp, docs.bp, admin.api, admin.console):
        app.register_blueprint(blueprint)
    for blueprint in ported:
        (register or app.register_blueprint)(blueprint)
    limits.init_app(app, enabled=settings.rate_limits.enabled, storage_url=settings.rate_limits.storage_url)
    return app
