"""Request parsing shared by the blueprints: images as multipart file field ``image`` (repeatable) or JSON
with base64 strings in ``image`` / ``images``; other fields from the form or the JSON object."""
from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import g, request

from ..errors import InvalidImage, UnsupportedMediaType, ValidationError
from .fields import strict_json

_LAYOUT = {ord(c): None for c in " \t\r\n"}
MULTIPART = "multipart/form-data"
JSON = "application/json"


def _kind() -> str:
    mimetype = request.mimetype or ""
    if mimetype == MULTIPART:
        return "multipart"
    if mimetype == JSON or mimetype.endswith("+json"):
        return "json"
    raise UnsupportedMediaType(
        f"send {MULTIPART} (file field 'image') or {JSON} (base64 in 'image'/'images'), not "
        f"{mimetype or 'no content type'}", details={"content_type": mimetype or None})


def json_body() -> dict[str, Any]:
    """The request's JSON object, parsed once per request (it may carry megabytes of base64)."""
    if "json_body" in g:
        return g.json_body
    body = strict_json(request.get_data(cache=True) or b"null", "body")
    if not isinstance(body, dict):
        raise ValidationError("the JSON body must be an object", field="body")
    g.json_body = body
    return body


def fields() -> dict[str, Any]:
    """Non-image fields, for ``bodies.parse``. Multipart values are strings; ``metadata`` may be a JSON string there."""
    if _kind() == "json":
        return {k: v for k, v in json_body().items() if k not in ("image", "images")}
    return {k: request.form.get(k) for k in request.form}


def images(*, at_most: int | None = None, field: str = "image") -> list[bytes]:
    """The request's images, at least one; each a bytes object (not yet decoded)."""
    if _kind() == "multipart":
        files = request.files.getlist(field)
        if field == "image":
            files += request.files.getlist("images")
        data = [f.read() for f in files]
        if not data and request.form.get(field):
            raise ValidationError(f"'{field}' must be a file part, not a text field", field=field)
    else:
        body = json_body()
        raw: list[Any] = []
        if field in body:
            raw.append(body[field])
        if field == "image" and "images" in body:
            if not isinstance(body["images"], list):
                raise ValidationError("'images' must be a list of base64 strings", field="images")
            raw.extend(body["images"])
        data = [_b64(v, field) for v in raw]
    if not data:
        raise ValidationError(f"an image is required in field '{field}'", field=field)
    if at_most is not None and len(data) > at_most:
        raise ValidationError(f"at most {at_most} image(s) allowed here, got {len(data)}", field=field,
                              details={"max": at_most, "got": len(data)})
    return data


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a base64 string", field=field)
    if value.startswith("data:") and "," in value:  # data URL
        value = value.split(",", 1)[1]
    # MIME base64 breaks lines every 76 characters (what `base64` prints by default): whitespace is layout.
    value = value.translate(_LAYOUT)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(f"'{field}' is not valid base64", details={"field": field}) from exc
