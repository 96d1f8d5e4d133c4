"""galleries (the maintained gallery size and the current index generation per model id) and index_outbox
(index changes written in the same transaction as the records)

Revision ID: 0004
Revises: 0003

``if_not_exists``: a database created after these tables joined schema.py already has them from the
baseline (see 0001's note). An existing gallery is counted once here and keeps its index collection as
generation 0 (``index-<model>``, the name it had before generations).
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _collection(model_id: str) -> str:
    """The name the index collection of ``model_id`` had before generations (chroma_index.base_name)."""
    return "index-" + (re.sub(r"[^a-zA-Z0-9._-]", "-", model_id).strip("-._") or "model")


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("persons", sa.BigInteger, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("applied_seq", sa.BigInteger, nullable=False),
        sa.Column("building_seq", sa.BigInteger, nullable=True),
        sa.Column("building_at", sa.String(32), nullable=True),
        sa.Column("retired", sa.String(200), nullable=True),
        sa.Column("retired_at", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("model_id", name="pk_galleries"),
        if_not_exists=True,
    )
    op.create_table(
        "index_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_index_outbox"),
        sqlite_autoincrement=True,  # ids are positions: never reused after the rows are deleted
        if_not_exists=True,
    )
    op.create_index("ix_index_outbox_model", "index_outbox", ["model_id", "id"], if_not_exists=True)
    bind = op.get_bind()
    known = {row[0] for row in bind.execute(sa.text("SELECT model_id FROM galleries"))}
    for model_id, count in bind.execute(sa.text("SELECT model_id, count(*) FROM persons GROUP BY model_id")).all():
        if model_id not in known:
            bind.execute(sa.text("INSERT INTO galleries (model_id, persons, generation, collection, applied_seq) "
                                 "VALUES (:m, :n, 0, :c, 0)"), {"m": model_id, "n": count, "c": _collection(model_id)})


def downgrade() -> None:
    op.drop_index("ix_index_outbox_model", table_name="index_outbox")
    op.drop_table("index_outbox")
    op.drop_table("galleries")
