"""API keys as the service manages them: ids, names, scopes, expiry, last use, revocation and rotation.

A key is 32 random bytes shown once; only its SHA-256 is kept (a plain hash suffices for a random secret of
that size: there is nothing to guess). Every request's key is looked up by that hash in the records
database, so a revocation holds from the next request on every worker and host, with no cache to expire.
``last_used_at`` is written at most once a minute per key and process: a busy key must not turn every
request into a database write.

Scopes are the smallest grants that pay: a kiosk that only checks people in needs ``verify`` and must not
be able to enroll (take over an identity) or ``identify`` (map who is enrolled). ``admin`` includes all.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from ..errors import KeyInConfig, KeyNotFound, LastAdminKey, ValidationError
from .records import now_iso
from .text import MAX_NAME, canonical

SCOPES = ("enroll", "verify", "identify", "admin")
CLIENT_SCOPES = ("enroll", "verify", "identify")  # what the former "client" scope granted
MAX_LIFETIME_S = 10 * 365 * 86400
TOUCH_EVERY_S = 60.0
# An admin key that expires within this does not count as the one left: a second admin key expiring in 2 s
# made the real one revocable, and two seconds later no admin key was left.
ADMIN_HORIZON_S = 3600.0


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """``fid_`` + 43 url-safe characters: the prefix lets secret scanners recognise a leaked key."""
    return f"fid_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None
    replaces: str | None = None
    source: str = "database"  # "config": from FACEID_ADMIN_KEYS / FACEID_CLIENT_KEYS, changed only there

    def active(self, now: str) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, *scopes: str) -> bool:
        """Whether the key grants any of ``scopes`` (``admin`` grants everything)."""
        return "admin" in self.scopes or any(s in self.scopes for s in scopes)


class KeyTable(Protocol):
    """Where keys are kept (``store.keys``): rows found by the hash of the key."""

    def find(self, sha256: str) -> ApiKey | None: ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def all(self) -> list[ApiKey]: ...

    def insert(self, key: ApiKey, sha256: str, *,
               retire: tuple[str, str | None, str | None] | None = None) -> None:
        """Also, in the same transaction, ``retire`` = (key id, revoked_at, expires_at) of another key."""
        ...

    def set_times(self, key_id: str, *, revoked_at: str | None = None, expires_at: str | None = None,
                  last_used_at: str | None = None) -> None: ...

    def retire(self, key_id: str, *, revoked_at: str | None, expires_at: str | None,
               admin_until: str | None = None) -> bool:
        """Revoke or expire the key; with ``admin_until``, only if another admin key stays valid until then,
        checked and written as one serialised step (False, nothing written, when none would)."""
        ...

    def empty(self) -> bool: ...

    def close(self) -> None: ...


def parse_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in found if s not in SCOPES]
    if not found or unknown:
        raise ValidationError(f"scopes must be a non-empty list of {', '.join(SCOPES)}", field="scopes",
                              details={"unknown": unknown, "allowed": list(SCOPES)})
    return tuple(s for s in SCOPES if s in found)


class Keys:
    """Authentication and key management over a ``KeyTable`` plus the keys fixed in the configuration."""

    def __init__(self, table: KeyTable, config_keys: dict[str, ApiKey] | None = None) -> None:
        self.table = table
        self.config_keys = dict(config_keys or {})  # sha256 -> key
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.table.close()

    def authenticate(self, secret: str | None) -> ApiKey | None:
        """The active key ``secret`` is, or None (unknown, revoked or expired: the caller learns no more)."""
        if not secret:
            return None
        digest = hash_key(secret)
        key = self.config_keys.get(digest) or self.table.find(digest)
        now = now_iso()
        if key is None or not key.active(now):
            return None
        if key.source == "database" and self._due(key.id):
            self.table.set_times(key.id, last_used_at=now)
        return key

    def _due(self, key_id: str) -> bool:
        moment = time.monotonic()
        with self._lock:
            if moment - self._touched.get(key_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
                return False
            self._touched[key_id] = moment
            return True

    def create(self, name: str, scopes: Iterable[str], *,
               expires_in_s: float | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown now and never again."""
        key, secret = self._new(name, scopes, expires_in_s)
        self.table.insert(key, hash_key(secret))
        return key, secret

    @staticmethod
    def _new(name: str, scopes: Iterable[str], expires_in_s: float | None,
             replaces: str | None = None) -> tuple[ApiKey, str]:
        name = canonical(name, "name", max_length=MAX_NAME)  # the CLI's names too, not only the API's
        if expires_in_s is not None and not 0 < expires_in_s <= MAX_LIFETIME_S:
            raise ValidationError(f"expires_in_s must be between 1 and {MAX_LIFETIME_S}", field="expires_in_s")
        key = ApiKey(id=f"key_{secrets.token_hex(6)}", name=name, scopes=parse_scopes(scopes),
                     created_at=now_iso(), expires_at=None if expires_in_s is None else now_iso(expires_in_s),
                     replaces=replaces)
        return key, new_secret()

    def list(self, *, include_inactive: bool = False) -> list[ApiKey]:
        now = now_iso()
        keys = list(self.config_keys.values()) + self.table.all()
        return [k for k in keys if include_inactive or k.active(now)]

    def get(self, key_id: str) -> ApiKey:
        key = self.table.get(key_id)
        if key is None:
            if any(k.id == key_id for k in self.config_keys.values()):
                raise KeyInConfig(details={"key_id": key_id})
            raise KeyNotFound(details={"key_id": key_id})
        return key

    def revoke(self, key_id: str, *, grace_s: float = 0, keep_an_admin: bool = True) -> ApiKey:
        """Revoked now, or (``grace_s``) made to expire soon so that its clients can switch to a new key.
        ``keep_an_admin``: refuse to revoke the last admin key, which would lock every admin out of the API
        (the CLI, which reaches the database itself and may not know the configured keys, passes False)."""
        key = self.get(key_id)
        if not key.active(now_iso()):
            return key
        guard = keep_an_admin and "admin" in key.scopes and not self._configured_admin()
        retired = _retired(key, grace_s)
        if not self.table.retire(key_id, revoked_at=retired.revoked_at, expires_at=retired.expires_at,
                                 admin_until=now_iso(ADMIN_HORIZON_S) if guard else None):
            raise LastAdminKey(f"no other admin key stays valid for the next {ADMIN_HORIZON_S / 3600:g} hour(s)",
                               details={"key_id": key_id})
        return retired

    def _configured_admin(self) -> bool:
        """An admin key in the configuration (changed only there, never expiring) keeps admins in."""
        return any("admin" in k.scopes for k in self.config_keys.values())

    def rotate(self, key_id: str, *, grace_s: float = 0) -> tuple[ApiKey, ApiKey, str]:
        """A new key with the old one's name, scopes and lifetime; the old one revoked (or expiring after
        ``grace_s``), in one transaction: a crash leaves either the old key alone or both changes, never a
        new key whose secret nobody saw beside an old one still working. Returns (old, new, new secret)."""
        old = self.get(key_id)
        if not old.active(now_iso()):
            raise KeyNotFound("that key is revoked or expired; create a new one", details={"key_id": key_id})
        new, secret = self._new(old.name, old.scopes, _lifetime_s(old), replaces=old.id)
        retired = _retired(old, grace_s)
        self.table.insert(new, hash_key(secret), retire=(old.id, retired.revoked_at, retired.expires_at))
        return retired, new, secret


def _retired(key: ApiKey, grace_s: float) -> ApiKey:
    """``key`` revoked now, or expiring after ``grace_s`` (never later than it already would)."""
    if grace_s > 0:
        return replace(key, expires_at=min(now_iso(min(grace_s, MAX_LIFETIME_S)), key.expires_at or "9999"))
    return replace(key, revoked_at=now_iso())


def _lifetime_s(key: ApiKey) -> float | None:
    if key.expires_at is None:
        return None
    span = datetime.fromisoformat(key.expires_at) - datetime.fromisoformat(key.created_at)
    return min(max(span.total_seconds(), 1.0), MAX_LIFETIME_S)
