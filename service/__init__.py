"""Face recognition identity service.

``create_app(settings)`` is the application factory (Flask's tutorial shape): it loads the models and opens
the store once, registers one blueprint per resource and the one JSON error handler.
"""
from __future__ import annotations

from typing import Any

from .config import Settings, load_settings

__all__ = ["create_app", "Settings", "load_settings"]


def create_app(settings: Settings | None = None, **overrides: Any):
    from flask import Flask

    from .api import detect, docs, errors, health, matching, persons, requests as request_context
    from .auth import KeyRing
    from .logs import configure_logging
    from .recognizer import Recognizer

    settings = settings or load_settings(**overrides)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["FACEID_SETTINGS"] = settings
    app.json.sort_keys = False

    app.extensions["faceid_keys"] = KeyRing.load(settings)
    app.extensions["faceid"] = Recognizer(settings).prepare()

    request_context.init_app(app)
    errors.init_app(app)
    for blueprint in (health.bp, detect.bp, persons.bp, matching.bp, docs.bp):
        app.register_blueprint(blueprint)
    return app
