"""The one place where errors become HTTP responses: ``{"error": {"code", "message", "details"}}``."""
from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed

from .. import errors as e
from . import schemas
from .auth import reveals_scores

log = logging.getLogger("faceid.errors")

# Werkzeug's own errors (routing, body size, bad JSON) mapped onto our stable codes.
_HTTP_CODES = {400: e.ValidationError, 401: e.Unauthorized, 403: e.Forbidden, 404: e.NotFound,
               405: e.MethodNotAllowed, 413: e.PayloadTooLarge, 415: e.UnsupportedMediaType, 429: e.RateLimited}


def error_response(error: e.FaceIdError) -> tuple[Response, int]:
    message, details = error.message, error.details
    if isinstance(error, e.DuplicateFace) and not reveals_scores():  # who else is enrolled is not theirs to see
        message = "a face matches a person already enrolled"
        details = {k: v for k, v in details.items() if k == "image_index"}
    g.error_code = error.code  # counted by the metrics (web/metrics.py)
    return jsonify(schemas.error(error.code, message, details, g.get("request_id"))), error.status


def init_app(app: Flask) -> None:
    @app.errorhandler(e.FaceIdError)
    def _faceid(error: e.FaceIdError) -> tuple[Response, int]:
        if error.status >= 500:
            log.error("request failed", extra={"code": error.code, "error": error.message})
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[Response, int]:
        if isinstance(error, ClientDisconnected):  # werkzeug's word for a body that stopped short or stalled
            return error_response(e.RequestTimeout("the request body was not received completely"))
        cls = _HTTP_CODES.get(error.code or 500)
        if cls is None:
            return error_response(e.FaceIdError(error.description or None))
        if cls is e.PayloadTooLarge:
            return error_response(e.PayloadTooLarge(
                "the request body is too large",
                details={"max_bytes": app.config.get("MAX_CONTENT_LENGTH")}))
        response, status = error_response(cls(error.description if cls is not e.NotFound else "no such endpoint"))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:  # RFC 9110: say what is allowed
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response, status

    @app.errorhandler(TimeoutError)
    def _stalled(error: TimeoutError) -> tuple[Response, int]:
        # Only the request socket has a timeout in the web layer (service/worker.py); the store maps its own.
        return error_response(e.RequestTimeout())

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        # A bug, not bad input: log the trace server-side, never send it.
        log.exception("unhandled error")
        return error_response(e.FaceIdError("internal error"))
