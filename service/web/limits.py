"""Rate limits (Flask-Limiter): floods of verify calls hill-climb a match, and wrong keys are guessed fast.

Three limits, each a setting, all answered with 429 ``rate_limited`` and ``Retry-After``:

* per API key, on every endpoint (``rate_limit_per_key``);
* per client IP for requests without a valid key — no key or a wrong one (``rate_limit_per_ip``), far
  lower, so key guessing is slow;
* per target person on verify, whichever key asks (``rate_limit_verify_per_person``): one stolen key or
  many cannot try photo after photo against one identity. Keyed on the canonical id the lookup uses
  (``bodies.Verify``), so no spelling of one id counts apart, and an id that is not one cannot become
  a counter (their number stays that of the ids that can exist).

Counters live in ``rate_limit_storage_url``: ``memory://`` (the default) counts per worker process, so
with N workers a client gets up to N times the limit; a shared backend (``redis://host:6379``,
``memcached://host:11211``) makes the limits hold across workers and hosts. Health checks and the docs are
not limited, nor are the docs' and the admin console's static files.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..errors import FaceIdError
from . import bodies, inputs
from .auth import caller
from .context import get_settings

UNLIMITED = ("/healthz", "/readyz", "/docs", "/openapi.json", "/metrics")


def _caller() -> tuple[str, bool]:
    """(counter key, has a valid API key): the key's id, else the client's IP."""
    key = caller()
    return (f"key:{key.id}", True) if key else (f"ip:{get_remote_address()}", False)


def _caller_limit() -> str:
    settings = get_settings()
    return settings.rate_limits.per_key if _caller()[1] else settings.rate_limits.per_ip


def _verify_target() -> str:
    """The person a verify names (the body is parsed once per request and cached). Requests without a valid
    key, or whose body does not parse, are not looked into: the view answers them with 401 or 4xx."""
    if not _caller()[1]:
        return "verify-person:"
    try:  # the id the lookup will use: " ada " is ada, and a malformed id shares one counter
        person_id = bodies.parse(bodies.Verify, inputs.fields()).person_id
    except FaceIdError:
        return "verify-person:"
    return f"verify-person:{person_id or ''}"


def _unlimited() -> bool:
    # The docs' and the console's static files: no data, and a page load fetches several of them. What the
    # console asks the API carries a key and counts against it.
    return request.path in UNLIMITED or request.path.startswith(("/docs/", "/admin"))


F = TypeVar("F", bound=Callable[..., Any])
_PER_PERSON = "faceid_limited_per_target_person"


def per_target_person(view: F) -> F:
    """Declares, at the view, that it is also limited per target person (``rate_limit_verify_per_person``).
    The limit itself is attached by ``init_app``: it needs the app's limiter, and each app has its own."""
    setattr(view, _PER_PERSON, True)
    return view


def init_app(app: Flask, *, enabled: bool, storage_url: str) -> None:
    """One limiter per app (its own counters and switch); call after the blueprints are registered."""
    limiter = Limiter(key_func=lambda: _caller()[0], default_limits=[_caller_limit], headers_enabled=True,
                      default_limits_exempt_when=_unlimited, storage_uri=storage_url,
                      strategy="moving-window", enabled=enabled)
    limiter.init_app(app)
    per_person = limiter.limit(lambda: get_settings().rate_limits.verify_per_person, key_func=_verify_target)
    for endpoint, view in list(app.view_functions.items()):
        if _declared(view):
            limited: Any = per_person(view)  # Flask-Limiter's wrapper is untyped
            app.view_functions[endpoint] = limited
    app.extensions["faceid.limiter"] = limiter


def _declared(view: Any) -> bool:
    while view is not None:  # through @require's and @operation's wrappers
        if getattr(view, _PER_PERSON, False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False
