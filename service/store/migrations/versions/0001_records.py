"""persons and faces: the baseline

Revision ID: 0001
Revises:

The baseline creates the tables of ``schema.py`` as they are. The first revision that changes ``schema.py``
must first freeze this one (write out the tables as they were here), so that a new database still goes
0001 -> 0002 -> head; tests/test_migrations.py fails until the migrated schema equals ``schema.py``.
"""
from alembic import op

from service.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
