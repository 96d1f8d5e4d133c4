"""api_keys (ids, names, scopes, expiry, last use, revocation, shared by every worker and host) and
audit_events (the audit trail, queryable)

Revision ID: 0003
Revises: 0002

``if_not_exists``: a database created after these tables joined schema.py already has them from the
baseline (see 0001's note).
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _strings(size: int, *names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(name, sa.String(size), nullable=nullable) for name in names]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        *_strings(32, "id", "created_at"), *_strings(200, "name", "scopes"), *_strings(64, "sha256"),
        *_strings(32, "expires_at", "last_used_at", "revoked_at", "replaces", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        if_not_exists=True,
    )
    op.create_index("ix_api_keys_sha256", "api_keys", ["sha256"], unique=True, if_not_exists=True)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        *_strings(32, "at"), *_strings(64, "op"),
        *_strings(64, "actor", "client_ip", "request_id", "decision", nullable=True),
        *_strings(128, "person_id", nullable=True),
        sa.Column("similarity", sa.Float, nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        if_not_exists=True,
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"], if_not_exists=True)
    op.create_index("ix_audit_events_person", "audit_events", ["person_id", "id"], if_not_exists=True)
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_index("ix_api_keys_sha256", table_name="api_keys")
    op.drop_table("api_keys")
