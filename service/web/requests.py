"""Per-request context: a request id (taken from ``X-Request-ID`` if the caller sent a sane one) that is
returned in the response header and attached to every log line about the request."""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from ..logs import actor, client_ip, request_id

log = logging.getLogger("faceid.http")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        g.log_token = request_id.set(g.request_id)
        g.log_tokens = (actor.set(None), client_ip.set(request.remote_addr))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        _secure(response)
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        log.info("request", extra={"method": request.method, "path": request.path,
                                   "status": response.status_code, "ms": round(1000 * elapsed, 1)})
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            request_id.reset(token)
        for var, previous in zip((actor, client_ip), g.pop("log_tokens", ()), strict=False):
            var.reset(previous)


# Answers carry biometric data and are never meant to be framed, sniffed, cached or sent elsewhere.
_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                     "Referrer-Policy": "no-referrer", "Cross-Origin-Resource-Policy": "same-origin",
                     "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
# The docs page: Swagger UI's files and its start script from this origin (no inline script), its inline
# styles, its data: images, and /openapi.json fetched from here.
_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _secure(response: Response) -> None:
    if response.mimetype == "text/html":  # a page (the docs), unless it set its own (the admin console)
        response.headers.setdefault("Content-Security-Policy", _PAGE_CSP)
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/v1/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
