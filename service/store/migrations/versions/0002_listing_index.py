"""persons: an index in listing order (model_id, created_at, id) for keyset pages

Revision ID: 0002
Revises: 0001

Measured at 50,000 persons: a page took 22 ms, sorting the gallery. ``if_not_exists``: a database created
after this index joined schema.py already has it from the baseline (see 0001's note).
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_persons_listing", "persons", ["model_id", "created_at", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_persons_listing", table_name="persons")
