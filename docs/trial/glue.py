"""What every candidate needs besides its own API, written once for the three: a pydantic error the library
caught, answered as ``bodies.parse`` answers it (our code, field and message), and a request class whose
``get_json`` is ours (strict JSON, an object, 415 for other media types), for the libraries that read the
body with ``request.get_json``."""
from __future__ import annotations

from typing import Any

from flask import Request
from pydantic import ValidationError as PydanticError

from service.errors import ValidationError
from service.web import inputs


def ours(exc: PydanticError, *, query: bool) -> ValidationError:
    """The first problem, worded as main words it (the library only saw pydantic's)."""
    problem = exc.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else "body"
    if problem["type"] == "extra_forbidden":
        unknown = sorted({str(p["loc"][0]) for p in exc.errors() if p["type"] == "extra_forbidden"})
        what = "parameter(s)" if query else "field(s)"
        return ValidationError(f"unknown {what}: {', '.join(unknown)}", field=unknown[0])
    if problem["type"] == "missing":
        return ValidationError(f"'{field}' is required", field=field)
    return ValidationError(f"'{field}': {problem['msg']}", field=field)


class StrictRequest(Request):
    """``get_json`` as ``inputs.json_body``: NaN, deep nesting, a non-object and a wrong media type refused
    with our codes (Flask's own accepts NaN and answers bad JSON with werkzeug's wording)."""
    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if inputs._kind() != "json":  # raises unsupported_media_type for what is neither JSON nor multipart
            return None
        return {k: v for k, v in inputs.json_body().items() if k not in ("image", "images")}
