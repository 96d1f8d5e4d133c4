"""API keys: two scopes, only hashes stored, constant-time checks (``web.auth`` applies them to requests).

``client`` keys may register, add faces, verify, identify, compare and detect; ``admin`` keys may do
everything (list, inspect, edit and delete people). Keys are 32 random bytes, so a plain SHA-256 is a safe
hash (no password stretching needed). There are no built-in keys: on the first start with an empty data dir
one admin and one client key are generated, printed once, and only their hashes are kept
(``<data_dir>/api_keys.json``, mode 0600). ``FACEID_ADMIN_KEYS`` / ``FACEID_CLIENT_KEYS`` (comma-separated)
replace that file for automated deployments.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import ConfigError

SCOPES = ("client", "admin")
KEY_FILE = "api_keys.json"
MIN_KEY_LENGTH = 16


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(scope: str) -> str:
    return f"fid_{scope[0]}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class KeyRing:
    entries: tuple[tuple[str, str], ...]  # (sha256 hex, scope)

    def scope_of(self, key: str | None) -> str | None:
        """The scope of ``key``, comparing against every stored hash in constant time."""
        if not key:
            return None
        digest = hash_key(key)
        found = None
        for stored, scope in self.entries:
            if hmac.compare_digest(stored, digest) and found != "admin":
                found = scope
        return found

    @classmethod
    def load(cls, settings: Settings, *, announce: Callable[[str], None] | None = None) -> KeyRing:
        if settings.admin_keys or settings.client_keys:
            pairs = [(k, "admin") for k in settings.admin_keys] + [(k, "client") for k in settings.client_keys]
            short = [scope for k, scope in pairs if len(k) < MIN_KEY_LENGTH]
            if short:
                raise ConfigError(f"API keys must have at least {MIN_KEY_LENGTH} characters",
                                  details={"key": "admin_keys/client_keys"})
            return cls(tuple((hash_key(k), scope) for k, scope in pairs))
        path = settings.data_dir / KEY_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                return cls(tuple((e["sha256"], e["scope"]) for e in data["keys"] if e["scope"] in SCOPES))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path} is not a valid key file: {exc}") from exc
        return cls._first_start(path, announce or functools.partial(_show_once, path.parent / FIRST_KEYS_FILE))

    @classmethod
    def _first_start(cls, path: Path, announce: Callable[[str], None]) -> KeyRing:
        keys = {scope: new_key(scope) for scope in ("admin", "client")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": [{"scope": s, "sha256": hash_key(k)} for s, k in keys.items()]}, f, indent=2)
        os.replace(tmp, path)
        announce("First start: created API keys. They are shown only now; store them safely.\n"
                 f"  admin key:  {keys['admin']}\n  client key: {keys['client']}\n"
                 f"(only their hashes are kept, in {path})")
        return cls(tuple((hash_key(k), s) for s, k in keys.items()))


FIRST_KEYS_FILE = "first-start-keys.txt"


def _show_once(file: Path, text: str) -> None:
    """On a terminal, show the keys there. Otherwise stderr is the service log (a container, a unit), and
    keys must never be in a log: write them to an owner-only file and log only where it is."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)
        return
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    logging.getLogger("faceid.keys").warning(
        "first start: API keys written to an owner-only file; read them, keep them safe, delete the file",
        extra={"file": str(file)})
