"""faces.source_sha256: the sha256 of the uploaded photo each face came from, unique per person

Revision ID: 0005
Revises: 0004

Faces enrolled before keep NULL (unknown; NULLs never collide in a unique index, on SQLite and PostgreSQL
alike). Guarded: a database created after the column joined schema.py already has it from the baseline (see
0001's note).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("faces")}
    if "source_sha256" not in columns:
        op.add_column("faces", sa.Column("source_sha256", sa.String(64), nullable=True))
    op.create_index("ux_faces_person_source", "faces", ["model_id", "person_id", "source_sha256"], unique=True,
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ux_faces_person_source", table_name="faces")
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("source_sha256")
