"""Request authentication: the ``X-API-Key`` header against the app's key ring (``service.keys``)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import g, request

from ..errors import Forbidden, Unauthorized
from ..keys import hash_key
from ..logs import actor
from .context import get_keys, get_settings

audit = logging.getLogger("faceid.audit")


def caller() -> tuple[str | None, str | None]:
    """(scope, key id) of the request's ``X-API-Key``, (None, None) without a valid one. Looked up once per
    request: the rate limiter and the views ask the same question. The key id is the first 12 hex digits of
    the key's SHA-256: it names a key in logs and counters without revealing it."""
    if "caller" not in g:
        key = request.headers.get("X-API-Key")
        scope = get_keys().scope_of(key)
        g.caller = (scope, hash_key(key)[:12] if scope and key else None)
    found: tuple[str | None, str | None] = g.caller
    return found


def require(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: the request's ``X-API-Key`` must carry ``scope`` (admin includes client)."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            have, key_id = caller()
            if have is None:
                audit.info("refused", extra={"op": request.endpoint, "decision": "unauthorized",
                                             "key_given": bool(request.headers.get("X-API-Key"))})
                raise Unauthorized("send a valid API key in the X-API-Key header")
            actor.set(f"{have}:{key_id}")
            if scope == "admin" and have != "admin":
                raise Forbidden("this endpoint needs an admin key", details={"required_scope": "admin"})
            g.scope = have
            return view(*args, **kwargs)
        return wrapped
    return decorator


def reveals_scores() -> bool:
    """Whether this request may see similarities, thresholds and other people (``least_revealing``): a
    stolen client key must not map the gallery or hill-climb a score."""
    return g.get("scope") == "admin" or not get_settings().least_revealing
