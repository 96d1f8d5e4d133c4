"""persons and faces

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "id", name="pk_persons"),
    )
    op.create_index("ix_persons_name_key", "persons", ["model_id", "name_key"])
    op.create_table(
        "faces",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("box", sa.Text, nullable=False),
        sa.Column("quality", sa.Text, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("crop", sa.LargeBinary, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_faces"),
        sa.ForeignKeyConstraint(["model_id", "person_id"], ["persons.model_id", "persons.id"], ondelete="CASCADE",
                                name="fk_faces_person"),
    )
    op.create_index("ix_faces_person", "faces", ["model_id", "person_id"])


def downgrade() -> None:
    op.drop_table("faces")
    op.drop_table("persons")
