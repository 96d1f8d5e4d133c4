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


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("last_used_at", sa.String(32), nullable=True),
        sa.Column("revoked_at", sa.String(32), nullable=True),
        sa.Column("replaces", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        if_not_exists=True,
    )
    op.create_index("ix_api_keys_sha256", "api_keys", ["sha256"], unique=True, if_not_exists=True)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("op", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("person_id", sa.String(128), nullable=True),
        sa.Column("decision", sa.String(64), nullable=True),
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
