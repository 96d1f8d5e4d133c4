"""The error hierarchy of the service.

Every failure a client can cause is a ``FaceIdError`` subclass carrying a stable machine-readable ``code`` and
an HTTP ``status``. The core raises these without knowing about HTTP; ``service.web.errors`` is the one place
that turns them into responses. Codes are part of the public API: never rename one.

The docstring of each class that a client can meet says when it happens: the error tables of ``/docs`` and
the README are generated from this hierarchy (``python -m service.errors`` prints the README's; a test keeps
them equal).
"""
from __future__ import annotations

import sys
from typing import Any


class FaceIdError(Exception):
    """A bug of ours, not the client's doing: a bare 500 with the request id (`X-Request-ID`) to report; the
    log has the traceback."""
    code = "internal_error"
    status = 500
    default_message = "internal error"

    def __init_subclass__(cls, *, code: str | None = None, status: int | None = None,
                          message: str | None = None, **kwargs: Any) -> None:
        """Each error declares its code, status and default message in its class line."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status
        if message is not None:
            cls.default_message = message

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class InvalidImage(FaceIdError, code="invalid_image", status=400, message="the file is not a readable image"):
    """Corrupt, truncated or empty file; bad base64."""


class ValidationError(FaceIdError, code="validation_error", status=400, message="invalid request"):
    """A field is missing or invalid (`details.field` names it), e.g. a looser threshold, or deleting a
    person's last face."""

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        details = dict(details or {})
        if field is not None:
            details.setdefault("field", field)
        super().__init__(message, details=details)


class Unauthorized(FaceIdError, code="unauthorized", status=401, message="missing or invalid API key"):
    """Missing or unknown `X-API-Key`."""


class Forbidden(FaceIdError, code="forbidden", status=403, message="this API key may not do that"):
    """The key lacks the scope the endpoint needs (`details.required_scope`), e.g. a `verify` key on
    register, or a non-admin key on an admin endpoint."""


class NotFound(FaceIdError, code="not_found", status=404, message="no such resource"):
    """No such endpoint."""


class PersonNotFound(NotFound, code="person_not_found", message="no such person"):
    """Unknown person id (on verify only to keys with `identify` or `admin`; a verify-only key gets a
    non-match)."""


class FaceNotFound(NotFound, code="face_not_found", message="no such face"):
    """That person has no face (or stored crop) with that id."""


class KeyNotFound(NotFound, code="key_not_found", message="no such API key"):
    """Unknown API key id (or, on rotate, a key already revoked or expired)."""


class MethodNotAllowed(FaceIdError, code="method_not_allowed", status=405,
                       message="method not allowed on this resource"):
    """The endpoint exists, the method does not."""


class Conflict(FaceIdError, status=409):
    """The request contradicts what is stored (never raised itself; see its subclasses)."""


class RequestTimeout(FaceIdError, code="request_timeout", status=408, message="the request was not received in time"):
    """The client stopped sending in the middle of its request (e.g. a body shorter than its Content-Length)
    for longer than `request_read_timeout_s`."""


class PersonExists(Conflict, code="person_exists", message="a person with this id already exists"):
    """Register with a taken `person_id`."""


class DuplicateFace(Conflict, code="duplicate_face", message="this face already belongs to another person"):
    """The face already matches *another* person (`details.person_id`; `duplicate_policy = "allow"` turns
    it off)."""


class DuplicatePhoto(Conflict, code="duplicate_photo", message="this photo is already one of the person's faces"):
    """The same file (by sha256) is already one of this person's faces, or is sent twice in one request: a
    bulk import re-run, or a retry after a lost answer, never adds a photo twice."""


class KeyInConfig(Conflict, code="key_in_config", message="this key is set in the configuration"):
    """Revoke or rotate a key that comes from `admin_keys`/`client_keys`: change the configuration instead."""


class LastAdminKey(Conflict, code="last_admin_key", message="this is the last active admin key"):
    """Revoking it would lock every admin out: no other admin key stays valid for the next hour (one about
    to expire does not count); create another admin key first."""


class PayloadTooLarge(FaceIdError, code="payload_too_large", status=413,
                      message="the request or image is too large"):
    """Request body, image bytes or pixel count over the limit (decompression bombs included), or a JPEG whose
    decoding would cost more work than its bytes say: more than 64 scans (`details.scans`) or 10,000
    segments (`details.segments`); a PNG with more than 10,000 chunks (one per KiB for larger files) or a
    GIF with more than 10,000 blocks before its image."""


class UnsupportedMediaType(FaceIdError, code="unsupported_media_type", status=415,
                           message="unsupported content type or image format"):
    """Not multipart/JSON, or an image format we do not read."""


class RateLimited(FaceIdError, code="rate_limited", status=429, message="too many requests"):
    """Over a rate limit (per key, per IP without a valid key, or per target person on verify); wait the
    `Retry-After` seconds."""


class FaceProblem(FaceIdError, status=422):
    """The image decoded, but its faces do not allow the operation (never raised itself)."""


class NoFace(FaceProblem, code="no_face", message="no face found in the image"):
    """No face in the image."""


class MultipleFaces(FaceProblem, code="multiple_faces",
                    message="more than one face found where exactly one is required"):
    """More than one person in an enrollment image."""


class TooManyFaces(FaceProblem, code="too_many_faces", message="the image has more faces than one request may take"):
    """Detect or identify (`all_faces=true`) found more faces than `max_faces_per_request`
    (`details.faces`, `details.max_faces`); crop the photo or send it in parts."""


class LowQuality(FaceProblem, code="low_quality", message="the face is not good enough to enroll"):
    """Enrollment face fails a check: `details.failed` lists each of `probability`, `face_size`, `blur`,
    `pose_yaw`, `pose_pitch`, `pose_roll` with value and limit."""


class FaceMismatch(FaceProblem, code="face_mismatch", message="the face does not match this person"):
    """Add-faces with a face that does not match the person's template at verify's threshold (an admin key
    may override with `allow_mismatch=true`)."""


class StoreUnavailable(FaceIdError, code="store_unavailable", status=503, message="the face store is unavailable"):
    """The records database or the vector index cannot be reached, did not answer within its deadline, is
    full, or failed. Nothing was written (a write that committed is answered with success, even if the index
    has yet to follow): retry later."""


class ModelError(FaceIdError, code="model_error", message="the recognition model is unavailable"):
    """A model could not be prepared or verified: an operator problem, raised at start-up."""


class ConfigError(FaceIdError, code="config_error", message="invalid configuration"):
    """Invalid configuration: raised at start-up, before any request is served."""


def client_errors() -> list[type[FaceIdError]]:
    """Every error a client can meet (its own code, a 4xx or 503), in the order of the docs: by HTTP status,
    then as declared."""
    found: list[type[FaceIdError]] = []

    def walk(cls: type[FaceIdError]) -> None:
        for sub in cls.__subclasses__():
            if sub.code != cls.code and (sub.status < 500 or sub.status == 503) and sub not in found:
                found.append(sub)
            walk(sub)
    walk(FaceIdError)
    return sorted(found, key=lambda c: c.status)


def when(cls: type[FaceIdError]) -> str:
    """When a client meets ``cls``: its docstring, as one line."""
    return " ".join((cls.__doc__ or "").split()).rstrip(".")


def markdown_table() -> str:
    documented: list[type[FaceIdError]] = [*client_errors(), FaceIdError]
    rows = [f"| `{c.code}` | {c.status} | {when(c)} |" for c in documented]
    return "\n".join(["| code | HTTP | when |", "|---|---|---|", *rows])


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
