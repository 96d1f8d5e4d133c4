"""The ``api_keys`` table behind ``core.keys.KeyTable``: one index probe by hash per request.

Retiring a key is one serialised transaction: the check that another admin key stays and the write are one
step on every worker and host (PostgreSQL: a transaction-scoped advisory lock; SQLite: the database's write
lock, taken first). Checked and written apart, two admins revoking each other at once both got 200 and left
no admin key."""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..core.keys import ApiKey
from .database import db_errors
from .schema import api_keys

_KEYS_LOCK = 0x6B657973  # "keys": key changes among PostgreSQL advisory locks
_COLUMNS = (api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at, api_keys.c.expires_at,
            api_keys.c.last_used_at, api_keys.c.revoked_at, api_keys.c.replaces)


def _key(row: Any) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, scopes=tuple(row.scopes.split()), created_at=row.created_at,
                  expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at,
                  replaces=row.replaces)


class SqlKeyTable:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @db_errors
    def find(self, sha256: str) -> ApiKey | None:
        with self.engine.connect() as db:
            row = db.execute(select(*_COLUMNS).where(api_keys.c.sha256 == sha256)).first()
        return None if row is None else _key(row)

    @db_errors
    def get(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as db:
            row = db.execute(select(*_COLUMNS).where(api_keys.c.id == key_id)).first()
        return None if row is None else _key(row)

    @db_errors
    def all(self) -> list[ApiKey]:
        with self.engine.connect() as db:
            rows = db.execute(select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)).all()
        return [_key(r) for r in rows]

    @db_errors
    def insert(self, key: ApiKey, sha256: str, *,
               retire: tuple[str, str | None, str | None] | None = None) -> None:
        with self.engine.begin() as db:
            db.execute(insert(api_keys).values(
                id=key.id, name=key.name, scopes=" ".join(key.scopes), sha256=sha256, created_at=key.created_at,
                expires_at=key.expires_at, last_used_at=key.last_used_at, revoked_at=key.revoked_at,
                replaces=key.replaces))
            if retire is not None:
                key_id, revoked_at, expires_at = retire
                db.execute(update(api_keys).where(api_keys.c.id == key_id)
                           .values(revoked_at=revoked_at, expires_at=expires_at))

    @db_errors
    def set_times(self, key_id: str, *, revoked_at: str | None = None, expires_at: str | None = None,
                  last_used_at: str | None = None) -> None:
        values = {name: value for name, value in (("revoked_at", revoked_at), ("expires_at", expires_at),
                                                  ("last_used_at", last_used_at)) if value is not None}
        if values:
            with self.engine.begin() as db:
                db.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))

    @db_errors
    def retire(self, key_id: str, *, revoked_at: str | None, expires_at: str | None,
               admin_until: str | None = None) -> bool:
        """Set the key's revocation and expiry. With ``admin_until``, only if another active admin key stays
        valid until then (one about to expire does not count); False, and nothing written, otherwise."""
        with self.engine.begin() as db:
            self._serialise(db, key_id)
            if admin_until is not None and not self._admin_besides(db, key_id, admin_until):
                return False
            db.execute(update(api_keys).where(api_keys.c.id == key_id)
                       .values(revoked_at=revoked_at, expires_at=expires_at))
        return True

    @staticmethod
    def _serialise(db: Connection, key_id: str) -> None:
        """Make concurrent retirements run one after the other, from here to the commit."""
        if db.dialect.name == "postgresql":
            db.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_KEYS_LOCK})")
        else:  # a write first: SQLite's one write lock, held until the commit (other writers wait on busy_timeout)
            db.execute(update(api_keys).where(api_keys.c.id == key_id).values(id=api_keys.c.id))

    @staticmethod
    def _admin_besides(db: Connection, key_id: str, until: str) -> bool:
        rows = db.execute(select(api_keys.c.scopes, api_keys.c.expires_at)
                          .where(api_keys.c.id != key_id, api_keys.c.revoked_at.is_(None))).all()
        return any("admin" in row.scopes.split() and (row.expires_at is None or row.expires_at > until)
                   for row in rows)

    @db_errors
    def empty(self) -> bool:
        with self.engine.connect() as db:
            return db.execute(select(api_keys.c.id).limit(1)).first() is None

    def close(self) -> None:
        self.engine.dispose()
