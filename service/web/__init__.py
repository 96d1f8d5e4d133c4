"""Everything Flask: the app factory, auth, the one error handler, request parsing, JSON shaping
(``schemas``) and one blueprint per resource."""
from __future__ import annotations

from typing import Any

from flask import Flask

from ..compose import Service, open_service
from ..config import Settings, load_settings
from ..logs import configure_audit, configure_logging
from . import (
    admin,
    audit,
    compactor,
    context,
    detect,
    docs,
    errors,
    health,
    imports,
    keys,
    limits,
    matching,
    persons,
    requests,
)
from . import metrics as prometheus

_CLOSE = "faceid.close"


def create_app(settings: Settings | None = None, *, service: Service | None = None, **overrides: Any) -> Flask:
    """Loads the models and opens the store once, registers one blueprint per resource and the one JSON
    error handler. ``service``: parts built elsewhere (the fast test tier's stub models and memory store),
    closed with the app."""
    settings = settings or load_settings(**overrides)
    configure_logging(settings.server.log_level)
    configure_audit(settings.server.data_dir / settings.audit.file if settings.audit.file else None,
                    settings.audit.retention_days)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    service = service or open_service(settings)
    context.init_app(app, settings, service.recognizer, service.keys, service.audit)
    app.extensions[_CLOSE] = service.close
    app.extensions["faceid.upkeep"] = compactor.start(service.recognizer, settings.store.compact_interval_s)
    requests.init_app(app)
    prometheus.init_app(app)
    errors.init_app(app)
    for blueprint in (health.bp, detect.bp, persons.bp, matching.bp, keys.bp, audit.bp, imports.bp, docs.bp, admin.api,
                      admin.console):
        app.register_blueprint(blueprint)
    limits.init_app(app, enabled=settings.rate_limits.enabled, storage_url=settings.rate_limits.storage_url)
    return app


def close_app(app: Flask) -> None:
    """Release the store (and the data dir lock): tests open several apps in one process."""
    stop = app.extensions.get("faceid.upkeep")
    if stop is not None:
        stop()
    app.extensions[_CLOSE]()
