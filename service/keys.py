"""The service's keys at start: those fixed in the configuration, plus the records database's ``api_keys``
table (managed with ``python -m enroll keys`` and the admin API ``/v1/keys``; see ``core.keys``).

There are no built-in keys. On the first start with neither configured keys nor any key in the database, one
admin and one client key are created and shown once: on a terminal there, else (stderr is then the service
log: a container, a unit) in an owner-only file whose path alone is logged. A key file of the previous format
(``<data_dir>/api_keys.json``, hashes only) is moved into the table once, keeping every key working.
``FACEID_ADMIN_KEYS`` / ``FACEID_CLIENT_KEYS`` suit automated deployments; such keys are changed only there.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from .config import MIN_SECRET_LENGTH, Settings
from .core.keys import CLIENT_SCOPES, ApiKey, Keys, hash_key
from .core.records import now_iso
from .errors import ConfigError
from .store.database import LOCK_FILE, serialized
from .store.keys import SqlKeyTable

OLD_KEY_FILE = "api_keys.json"
FIRST_KEYS_FILE = "first-start-keys.txt"
MIN_KEY_LENGTH = MIN_SECRET_LENGTH
_SCOPES_OF = {"admin": ("admin",), "client": CLIENT_SCOPES}


def load_keys(settings: Settings, engine: Engine, *, first_start: bool = True,
              announce: Callable[[str], None] | None = None) -> Keys:
    keys = Keys(SqlKeyTable(engine), _config_keys(settings))
    # Workers start together: one at a time decides whether this is the first start.
    with serialized(engine, settings.server.data_dir / LOCK_FILE):
        old_file = settings.server.data_dir / OLD_KEY_FILE
        if old_file.is_file():
            _import_key_file(keys, old_file)
        elif first_start and not keys.config_keys and keys.table.empty():
            _first_start(keys, announce or functools.partial(_show_once, settings.server.data_dir / FIRST_KEYS_FILE))
    return keys


def _config_keys(settings: Settings) -> dict[str, ApiKey]:
    pairs = [(k, "admin") for k in settings.keys.admin_keys] + [(k, "client") for k in settings.keys.client_keys]
    if any(len(k) < MIN_KEY_LENGTH for k, _ in pairs):
        raise ConfigError(f"API keys must have at least {MIN_KEY_LENGTH} characters",
                          details={"key": "admin_keys/client_keys"})
    found = {}
    for number, (secret, kind) in enumerate(pairs, 1):
        digest = hash_key(secret)
        found[digest] = ApiKey(id=f"config_{digest[:12]}", name=f"{kind} key {number} (configuration)",
                               scopes=_SCOPES_OF[kind], created_at="", source="config")
    return found


def _import_key_file(keys: Keys, path: Path) -> None:
    """The key file of the previous format into the table (same ids as its audit lines used), then removed."""
    try:
        entries = [(e["sha256"], _SCOPES_OF[e["scope"]]) for e in json.loads(path.read_text())["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid key file: {exc}") from exc
    for digest, scopes in entries:
        if keys.table.find(digest) is None:
            keys.table.insert(ApiKey(id=f"key_{digest[:12]}", name=f"{scopes[0]} key (imported)", scopes=scopes,
                                     created_at=now_iso()), digest)
    path.unlink()
    logging.getLogger("faceid.keys").warning("moved the API key file into the records database",
                                             extra={"keys": len(entries)})


def _first_start(keys: Keys, announce: Callable[[str], None]) -> None:
    admin, admin_secret = keys.create("first admin key", ["admin"])
    client, client_secret = keys.create("first client key", CLIENT_SCOPES)
    announce("First start: created API keys. They are shown only now; store them safely.\n"
             f"  admin key:  {admin_secret}   (id {admin.id})\n  client key: {client_secret}   (id {client.id})\n"
             "Only their hashes are kept. Manage keys with `python -m enroll keys` or /v1/keys.")


def _show_once(file: Path, text: str) -> None:
    """On a terminal, show the keys there. Otherwise stderr is the service log, and keys must never be in a
    log: write them to an owner-only file and log only where it is."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)
        return
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    logging.getLogger("faceid.keys").warning(
        "first start: API keys written to an owner-only file; read them, keep them safe, delete the file",
        extra={"file": str(file)})
