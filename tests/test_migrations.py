"""The records schema is what Alembic builds: an empty database upgraded to head equals store/schema.py, on
SQLite and on a real PostgreSQL, and upgrading twice is a no-op."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.store.database import open_database
from service.store.migrations import upgrade
from service.store.schema import metadata


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgraded_database_equals_the_schema(backend, tmp_path, request):
    url = "" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = open_database(url, tmp_path)
    try:
        upgrade(engine)  # a second upgrade changes nothing
        with engine.connect() as db:
            assert compare_metadata(MigrationContext.configure(db), metadata) == []
            assert MigrationContext.configure(db).get_current_revision() == "0005"
        assert set(inspect(engine).get_table_names()) == {"persons", "faces", "api_keys", "audit_events",
                                                          "galleries", "index_outbox", "alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_file_is_owner_only_and_erases_for_real(tmp_path):
    engine = open_database("", tmp_path)
    try:
        assert (tmp_path / "records.sqlite3").stat().st_mode & 0o777 == 0o600
        assert tmp_path.stat().st_mode & 0o777 == 0o700
        with engine.connect() as db:
            assert db.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert db.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_store_failure_not_a_bug(tmp_path):
    """The registration lock and every records call answer 503 store_unavailable when PostgreSQL is gone."""
    from sqlalchemy import create_engine

    from service.errors import StoreUnavailable
    from service.store.database import serialized

    from .conftest import free_port

    gone = create_engine(f"postgresql+psycopg://faceid@127.0.0.1:{free_port()}/faceid",
                         connect_args={"connect_timeout": 2})
    with pytest.raises(StoreUnavailable):
        with serialized(gone, tmp_path / "lock"):
            pass
    with pytest.raises(StoreUnavailable):
        open_database(f"postgresql+psycopg://faceid@127.0.0.1:{free_port()}/faceid", tmp_path)


def test_a_database_from_revision_0001_gets_the_listing_index(tmp_path):
    engine = open_database("", tmp_path)
    try:
        with engine.begin() as db:  # as a 0001 database was: no listing index
            db.exec_driver_sql("DROP INDEX ix_persons_listing")
            db.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
        upgrade(engine)
        assert "ix_persons_listing" in {i["name"] for i in inspect(engine).get_indexes("persons")}
        with engine.connect() as db:
            assert MigrationContext.configure(db).get_current_revision() == "0005"
    finally:
        engine.dispose()


def test_a_database_from_revision_0002_gets_the_key_and_audit_tables(tmp_path):
    engine = open_database("", tmp_path)
    try:
        with engine.begin() as db:  # as a 0002 database was: no key or audit table
            db.exec_driver_sql("DROP TABLE api_keys")
            db.exec_driver_sql("DROP TABLE audit_events")
            db.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'")
        upgrade(engine)
        assert "ix_api_keys_sha256" in {i["name"] for i in inspect(engine).get_indexes("api_keys")}
        with engine.connect() as db:
            assert compare_metadata(MigrationContext.configure(db), metadata) == []
    finally:
        engine.dispose()


def test_a_database_from_revision_0004_gets_face_source_hashes_unique_per_person(tmp_path):
    """Faces enrolled before keep NULL (any number of them); one photo hash per person, enforced by the
    database, so a retried request after a lost answer cannot add the same photo twice."""
    from sqlalchemy import exc as sa_exc

    engine = open_database("", tmp_path)
    try:
        with engine.begin() as db:  # as a 0004 database was: no source hash
            db.exec_driver_sql("DROP INDEX ux_faces_person_source")
            db.exec_driver_sql("ALTER TABLE faces DROP COLUMN source_sha256")
            db.exec_driver_sql("INSERT INTO persons VALUES ('m', 'p', 'P', 'p', '{}', 't', 't', x'00')")
            for face in ("f1", "f2"):
                db.exec_driver_sql(f"INSERT INTO faces VALUES ('{face}', 'm', 'p', 't', '{{}}', '{{}}', x'00', NULL)")
            db.exec_driver_sql("UPDATE alembic_version SET version_num = '0004'")
        upgrade(engine)
        with engine.connect() as db:
            assert compare_metadata(MigrationContext.configure(db), metadata) == []
            assert db.exec_driver_sql("SELECT count(*) FROM faces WHERE source_sha256 IS NULL").scalar() == 2
        with engine.begin() as db:
            db.exec_driver_sql("INSERT INTO faces VALUES ('f3', 'm', 'p', 't', '{}', '{}', x'00', NULL, 'h')")
        with pytest.raises(sa_exc.IntegrityError), engine.begin() as db:
            db.exec_driver_sql("INSERT INTO faces VALUES ('f4', 'm', 'p', 't', '{}', '{}', x'00', NULL, 'h')")
    finally:
        engine.dispose()
