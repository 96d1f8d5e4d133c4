"""Request authentication: the ``X-API-Key`` header against the app's keys (``core.keys``), and the scope
each endpoint needs."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import g, request

from ..core.keys import ApiKey
from ..core.text import identifier
from ..errors import FaceNotFound, Forbidden, KeyNotFound, NotFound, PersonNotFound, Unauthorized
from ..logs import actor
from .context import get_keys, get_settings

audit = logging.getLogger("faceid.audit")
# Ids in the path, each with the answer for one that no stored id can be (NUL, controls, 8 MB).
_PATH_IDS: dict[str, type[NotFound]] = {"person_id": PersonNotFound, "face_id": FaceNotFound,
                                        "key_id": KeyNotFound}


def caller() -> ApiKey | None:
    """The request's active key, None without one. Looked up once per request (the rate limiter and the
    views ask the same question), and never cached across requests: a revoked key fails on its next
    request, on every worker."""
    if "caller" not in g:
        g.caller = get_keys().authenticate(request.headers.get("X-API-Key"))
    found: ApiKey | None = g.caller
    return found


def require(*scopes: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: the request's key must grant one of ``scopes`` (``admin`` grants all)."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            key = caller()
            if key is None:
                audit.info("refused", extra={"op": request.endpoint, "decision": "unauthorized",
                                             "key_given": bool(request.headers.get("X-API-Key"))})
                raise Unauthorized("send a valid API key in the X-API-Key header")
            actor.set(key.id)
            if not key.allows(*scopes):
                audit.info("refused", extra={"op": request.endpoint, "decision": "forbidden"})
                raise Forbidden(f"this endpoint needs a key with scope {' or '.join(scopes)}",
                                details={"required_scope": list(scopes)})
            return view(*args, **_canonical_path(kwargs))
        wrapped.required_scopes = scopes  # type: ignore[attr-defined]  # read by openapi.spec
        return wrapped
    return decorator


def _canonical_path(ids: dict[str, Any]) -> dict[str, Any]:
    """The path's ids in their canonical form (``core.text``), checked after the key: a caller without one
    learns nothing, not even that an id is malformed."""
    for name, missing in _PATH_IDS.items():
        if isinstance(ids.get(name), str):
            found = identifier(ids[name], name)
            if found is None:
                raise missing(f"no such {name.removesuffix('_id')}")
            ids[name] = found
    return ids


def is_admin() -> bool:
    key = caller()
    return key is not None and "admin" in key.scopes


def reveals_enrollment() -> bool:
    """Whether this request may learn that an id is not enrolled (a 404 on verify): keys that may identify
    learn who is enrolled anyway; a verify-only key, the one a kiosk holds, may not (``least_revealing``)."""
    key = caller()
    return (key is not None and key.allows("identify")) or not get_settings().decisions.least_revealing


def reveals_scores() -> bool:
    """Whether this request may see similarities, thresholds and other people (``least_revealing``): a
    stolen client key must not map the gallery or hill-climb a score."""
    return is_admin() or not get_settings().decisions.least_revealing
