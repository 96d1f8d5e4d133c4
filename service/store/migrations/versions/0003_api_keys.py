"""api_keys: keys with ids, names, scopes, expiry, last use and revocation, shared by every worker and host

Revision ID: 0003
Revises: 0002

``if_not_exists``: a database created after this table joined schema.py already has it from the baseline
(see 0001's note).
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


def downgrade() -> None:
    op.drop_index("ix_api_keys_sha256", table_name="api_keys")
    op.drop_table("api_keys")
