"""The records tables: persons and faces of every model id, with the embeddings and crops themselves, so the
vector index can always be rebuilt from them; the API keys, so that every worker and host sees a revocation
on its next request; and the audit trail, queryable from any of them. Changed only through an Alembic
migration (``store/migrations``; read its baseline's note first); the service upgrades the schema at start."""
from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Column,
                        Float,
                        ForeignKeyConstraint,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        PrimaryKeyConstraint,
                        String,
                        Table,
                        Text,
)

metadata = MetaData()

persons = Table(
    "persons", metadata,
    Column("model_id", String(200), nullable=False),
    Column("id", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False),  # lower-cased name, for search
    Column("metadata", Text, nullable=False),         # JSON object
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("template", LargeBinary, nullable=False),  # float32, the renormalised mean of the faces
    PrimaryKeyConstraint("model_id", "id", name="pk_persons"),
)
Index("ix_persons_name_key", persons.c.model_id, persons.c.name_key)
# Listing order, so a keyset page is an index range scan, not a sort of the whole gallery (revision 0002).
Index("ix_persons_listing", persons.c.model_id, persons.c.created_at, persons.c.id)

faces = Table(
    "faces", metadata,
    Column("id", String(64), nullable=False),
    Column("model_id", String(200), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("box", Text, nullable=False),              # JSON
    Column("quality", Text, nullable=False),          # JSON
    Column("embedding", LargeBinary, nullable=False),  # float32
    Column("crop", LargeBinary, nullable=True),       # JPEG
    # sha256 of the uploaded photo the face came from (revision 0005; NULL for faces enrolled before): a bulk
    # import skips photos a person already has, and the unique index below refuses the same photo twice for
    # one person even when a client retries a request whose answer it lost.
    Column("source_sha256", String(64), nullable=True),
    PrimaryKeyConstraint("id", name="pk_faces"),
    ForeignKeyConstraint(["model_id", "person_id"], ["persons.model_id", "persons.id"], ondelete="CASCADE",
                         name="fk_faces_person"),
)
Index("ix_faces_person", faces.c.model_id, faces.c.person_id)
Index("ux_faces_person_source", faces.c.model_id, faces.c.person_id, faces.c.source_sha256, unique=True)

# One row per model id: the gallery's size, kept in the same transaction as every registration and erasure
# (counting a million rows per identify would cost ~45 ms), and which Chroma collection is the model's index
# now. Rebuilds fill the next generation beside the current one and switch ``collection`` in one transaction;
# every instance reads this row per search and follows the switch (revision 0004).
galleries = Table(
    "galleries", metadata,
    Column("model_id", String(200), nullable=False),
    Column("persons", BigInteger, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("collection", String(200), nullable=False),
    # Every outbox entry up to this id has reached ``collection``.
    Column("applied_seq", BigInteger, nullable=False),
    # While a rebuild fills the next generation: the outbox id its snapshot was read at (entries after it are
    # kept until the rebuild has replayed them). NULL when none runs.
    Column("building_seq", BigInteger, nullable=True),
    Column("building_at", String(32), nullable=True),
    # The generation a switch left behind, dropped once no instance can still be searching it.
    Column("retired", String(200), nullable=True),
    Column("retired_at", String(32), nullable=True),
    PrimaryKeyConstraint("model_id", name="pk_galleries"),
)

# The outbox: "this person's index entry must be made to match the records", written in the same transaction
# as the change. Applying an entry reads the record as it is then (template, or none: delete), so entries are
# idempotent and their order does not matter; any instance applies them, at once after the commit, again
# by the upkeep thread if the index was down, and at start.
index_outbox = Table(
    "index_outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), autoincrement=True, nullable=False),
    Column("model_id", String(200), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("at", String(32), nullable=False),
    PrimaryKeyConstraint("id", name="pk_index_outbox"),
    sqlite_autoincrement=True,  # ids are positions: never reused after the rows are deleted
)
Index("ix_index_outbox_model", index_outbox.c.model_id, index_outbox.c.id)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), nullable=False),           # public: names the key in logs, the API and the CLI
    Column("name", String(200), nullable=False),
    Column("scopes", String(200), nullable=False),      # space-separated
    Column("sha256", String(64), nullable=False),       # of the key itself, which is never stored
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("last_used_at", String(32), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    Column("replaces", String(32), nullable=True),      # the key this one rotated
    PrimaryKeyConstraint("id", name="pk_api_keys"),
)
# A request's key is found by its hash: one index probe, whatever the number of keys (revision 0003).
Index("ix_api_keys_sha256", api_keys.c.sha256, unique=True)

audit_events = Table(
    "audit_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), autoincrement=True, nullable=False),
    Column("at", String(32), nullable=False),
    Column("op", String(64), nullable=False),
    Column("actor", String(64), nullable=True),          # the key's id, never the key
    Column("client_ip", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("person_id", String(128), nullable=True),     # on whom
    Column("decision", String(64), nullable=True),
    Column("similarity", Float, nullable=True),
    Column("details", Text, nullable=False),             # JSON: ids, counts, thresholds; never images or vectors
    PrimaryKeyConstraint("id", name="pk_audit_events"),
)
Index("ix_audit_events_at", audit_events.c.at)
Index("ix_audit_events_person", audit_events.c.person_id, audit_events.c.id)
Index("ix_audit_events_actor", audit_events.c.actor, audit_events.c.id)
