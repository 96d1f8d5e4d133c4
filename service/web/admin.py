"""The admin console (``/admin``: one static page, its script and its styles, no build step, no CDN) and the
two small endpoints it needs beyond the public API: ``GET /v1/status`` (admin) and ``POST /v1/quality``
(any key: what enrollment would say about one photo, before registering).

The page holds no secret and no data: it is served to anyone, and everything it shows comes from the API with
the admin key the user types in (kept in the tab's sessionStorage, sent as ``X-API-Key``; no cookie, so no
CSRF surface). Its Content-Security-Policy allows its own script and styles only (no inline script, no
``eval``), images from ``blob:`` (thumbnails fetched with the key) and ``data:``, and requests to this origin.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .. import __version__
from .. import errors as e
from . import bodies, inputs, models, schemas
from .auth import require
from .context import get_recognizer, get_settings
from .openapi import operation

console = Blueprint("admin", __name__, url_prefix="/admin", static_folder="static/admin",
                    static_url_path="/static")
api = Blueprint("admin_api", __name__, url_prefix="/v1")

CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
               "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


@console.get("")
@console.get("/")
def page() -> Response:
    return console.send_static_file("index.html")


@console.after_request
def _console_headers(response: Response) -> Response:
    """The console's CSP on its page (however it is reached); page, script and styles change together on an
    upgrade, so they are revalidated rather than mixed across versions."""
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


@api.get("/status")
@operation("Model, gallery size, thresholds, stores and version", responses={200: models.Status},
           errors=[e.StoreUnavailable])
@require("admin")
def status() -> Response:
    """Model id, gallery size, thresholds, where records and vectors live, version: the console's status
    strip. Admin only: the gallery size is not a client's business (least revealing)."""
    recognizer, settings = get_recognizer(), get_settings()
    records = settings.store.database_url.split(":", 1)[0].split("+", 1)[0] if settings.store.database_url else "sqlite"
    return jsonify(schemas.status(
        version=__version__, model=recognizer.model_id, ready=recognizer.ready,
        verify_threshold=recognizer.verify_threshold, decision=recognizer.open_set_decision(),
        records=records, index="server" if settings.store.chroma_url else "embedded", state=recognizer.index_state()))


@api.post("/quality")
@operation("What registration would say about one photo, before registering", body=bodies.OneImage,
           responses={200: models.EnrollmentCheck})
@require("enroll", "verify", "identify")  # any working key: it reveals no one
def quality() -> Response:
    """One image as registration would judge it: every face, the one it would take, that face's quality
    checks, and the error it would answer. Nothing is embedded, stored or compared with the gallery (so no
    ``duplicate_face`` here: that question is about other people)."""
    (data,) = inputs.images(at_most=1)
    return jsonify(schemas.enrollment_check(get_recognizer().check_enrollment(data)))
