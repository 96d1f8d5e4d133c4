"""Request authentication: the ``X-API-Key`` header against the app's key ring (``service.keys``)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request

from ..errors import Forbidden, Unauthorized
from .context import get_keys, get_settings


def require(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: the request's ``X-API-Key`` must carry ``scope`` (admin includes client)."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            have = get_keys().scope_of(request.headers.get("X-API-Key"))
            if have is None:
                raise Unauthorized("send a valid API key in the X-API-Key header")
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
