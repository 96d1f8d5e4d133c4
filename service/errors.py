"""The error hierarchy of the service.

Every failure a client can cause is a ``FaceIdError`` subclass carrying a stable machine-readable ``code`` and
an HTTP ``status``. The core raises these without knowing about HTTP; ``service.api.errors`` is the one place
that turns them into responses. Codes are part of the public API: never rename one.
"""
from __future__ import annotations

from typing import Any


class FaceIdError(Exception):
    code = "internal_error"
    status = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidImage(FaceIdError):
    code, status, default_message = "invalid_image", 400, "the file is not a readable image"


class ValidationError(FaceIdError):
    code, status, default_message = "validation_error", 400, "invalid request"

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        details = dict(details or {})
        if field is not None:
            details.setdefault("field", field)
        super().__init__(message, details=details)


class Unauthorized(FaceIdError):
    code, status, default_message = "unauthorized", 401, "missing or invalid API key"


class Forbidden(FaceIdError):
    code, status, default_message = "forbidden", 403, "this API key may not do that"


class NotFound(FaceIdError):
    code, status, default_message = "not_found", 404, "no such resource"


class PersonNotFound(NotFound):
    code, default_message = "person_not_found", "no such person"


class FaceNotFound(NotFound):
    code, default_message = "face_not_found", "no such face"


class MethodNotAllowed(FaceIdError):
    code, status, default_message = "method_not_allowed", 405, "method not allowed on this resource"


class Conflict(FaceIdError):
    code, status, default_message = "conflict", 409, "conflict"


class PersonExists(Conflict):
    code, default_message = "person_exists", "a person with this id already exists"


class DuplicateFace(Conflict):
    code, default_message = "duplicate_face", "this face already belongs to another person"


class PayloadTooLarge(FaceIdError):
    code, status, default_message = "payload_too_large", 413, "the request or image is too large"


class UnsupportedMediaType(FaceIdError):
    code, status, default_message = "unsupported_media_type", 415, "unsupported content type or image format"


class FaceProblem(FaceIdError):
    """The image decoded, but its faces do not allow the operation."""
    status = 422


class NoFace(FaceProblem):
    code, default_message = "no_face", "no face found in the image"


class MultipleFaces(FaceProblem):
    code, default_message = "multiple_faces", "more than one face found where exactly one is required"


class LowQuality(FaceProblem):
    code, default_message = "low_quality", "the face is not good enough to enroll"


class StoreUnavailable(FaceIdError):
    code, status, default_message = "store_unavailable", 503, "the face store is unavailable"


class ModelError(FaceIdError):
    """A model could not be prepared or verified: an operator problem, raised at start-up."""
    code, status, default_message = "model_error", 500, "the recognition model is unavailable"


class ConfigError(FaceIdError):
    """Invalid configuration: raised at start-up, before any request is served."""
    code, status, default_message = "config_error", 500, "invalid configuration"
