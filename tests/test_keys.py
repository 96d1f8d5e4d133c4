"""API keys in the records database: scopes, expiry, revocation and rotation through the core, the admin API
and the CLI; the previous key file is moved in without breaking a key."""
import json
import time

import pytest

from service.config import load_settings
from service.core.keys import CLIENT_SCOPES, Keys, hash_key
from service.errors import KeyInConfig, KeyNotFound, LastAdminKey, ValidationError
from service.keys import load_keys
from service.store.database import open_database
from service.store.keys import SqlKeyTable

from .conftest import ADMIN, ADMIN_KEY, CLIENT, upload
from .helpers import assert_error


@pytest.fixture()
def keys(tmp_path):
    engine = open_database("", tmp_path)
    yield Keys(SqlKeyTable(engine))
    engine.dispose()


def test_a_key_works_until_revoked_or_expired_and_only_for_its_scopes(keys):
    kiosk, secret = keys.create("kiosk 3", ["verify"])
    assert secret.startswith("fid_") and len(secret) > 40
    found = keys.authenticate(secret)
    assert found and found.id == kiosk.id and found.allows("verify") and not found.allows("enroll", "identify")
    assert keys.authenticate(secret[:-1] + "x") is None and keys.authenticate("") is None
    assert keys.table.get(kiosk.id).last_used_at  # written on use (at most once a minute per key)
    keys.revoke(kiosk.id)
    assert keys.authenticate(secret) is None
    assert [k.id for k in keys.list()] == [] and [k.id for k in keys.list(include_inactive=True)] == [kiosk.id]
    short, short_secret = keys.create("short-lived", ["identify"], expires_in_s=1)
    assert keys.authenticate(short_secret) is not None
    time.sleep(1.1)
    assert keys.authenticate(short_secret) is None


def test_rotation_keeps_name_and_scopes_and_the_old_key_only_for_the_grace(keys):
    keys.create("ops", ["admin"])
    app_key, old_secret = keys.create("mobile app", CLIENT_SCOPES)
    old, new, new_secret = keys.rotate(app_key.id)
    assert (new.name, new.scopes, new.replaces) == ("mobile app", CLIENT_SCOPES, app_key.id)
    assert old.revoked_at and keys.authenticate(old_secret) is None and keys.authenticate(new_secret).id == new.id
    with pytest.raises(KeyNotFound):  # a revoked key is not rotated again
        keys.rotate(app_key.id)
    old, newer, newer_secret = keys.rotate(new.id, grace_s=3600)
    assert old.revoked_at is None and old.expires_at and keys.authenticate(new_secret) is not None
    assert keys.authenticate(newer_secret).id == newer.id


def test_the_last_admin_key_cannot_be_revoked_and_bad_input_is_refused(keys):
    admin, _ = keys.create("only admin", ["admin"])
    with pytest.raises(LastAdminKey):
        keys.revoke(admin.id)
    with pytest.raises(KeyNotFound):
        keys.revoke("key_nope")
    for name, scopes, expires in (("x", ["root"], None), ("x", [], None), ("", ["verify"], None),
                                  ("x", ["verify"], 0), ("x", ["verify"], 10**10)):
        with pytest.raises(ValidationError):
            keys.create(name, scopes, expires_in_s=expires)


def test_the_previous_key_file_moves_into_the_database(tmp_path):
    """A data dir of the previous format keeps its keys working, with the ids its audit lines used."""
    admin_secret, client_secret = "fid_a_" + "A" * 43, "fid_c_" + "C" * 43
    (tmp_path / "api_keys.json").write_text(json.dumps({"keys": [
        {"scope": "admin", "sha256": hash_key(admin_secret)}, {"scope": "client", "sha256": hash_key(client_secret)}]}))
    engine = open_database("", tmp_path)
    try:
        keys = load_keys(load_settings(env={}, data_dir=str(tmp_path)), engine,
                         announce=lambda text: pytest.fail("must not create keys"))
        assert not (tmp_path / "api_keys.json").exists()
        assert keys.authenticate(admin_secret).scopes == ("admin",)
        client = keys.authenticate(client_secret)
        assert client.scopes == CLIENT_SCOPES and client.id == f"key_{hash_key(client_secret)[:12]}"
    finally:
        engine.dispose()


def test_admin_api_creates_scoped_keys_and_revocation_holds_from_the_next_request(make_app):
    app = make_app()
    client = app.test_client()
    assert_error(client.get("/v1/keys", headers=CLIENT), 403, "forbidden")
    r = client.post("/v1/keys", headers=ADMIN, json={"name": "door kiosk", "scopes": ["verify"],
                                                      "expires_in_s": 3600})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    kiosk = {"X-API-Key": body["secret"]}
    assert body["key"]["scopes"] == ["verify"] and body["key"]["expires_at"]
    listed = client.get("/v1/keys", headers=ADMIN).get_json()["items"]
    assert body["key"]["id"] in [k["id"] for k in listed]
    assert body["secret"] not in json.dumps(listed) and hash_key(body["secret"]) not in json.dumps(listed)
    assert {k["source"] for k in listed} == {"config", "database"}
    # Its scope: verify (reaches the view: a missing field is a 400), not register or identify.
    assert_error(client.post("/v1/verify", headers=kiosk, json={}), 400, "validation_error")
    error = assert_error(client.post("/v1/persons", headers=kiosk, data=upload("people/Kit_Harington/0001.jpg",
                                                                                 name="x")), 403, "forbidden")
    assert error["details"]["required_scope"] == ["enroll"]
    assert_error(client.post("/v1/identify", headers=kiosk, json={}), 403, "forbidden")
    assert_error(client.get("/v1/keys", headers=kiosk), 403, "forbidden")
    rotated = client.post(f"/v1/keys/{body['key']['id']}/rotate", headers=ADMIN, json={"grace_s": 60})
    assert rotated.status_code == 201 and rotated.get_json()["replaced"]["id"] == body["key"]["id"]
    new_kiosk = {"X-API-Key": rotated.get_json()["secret"]}
    assert_error(client.post("/v1/verify", headers=kiosk, json={}), 400, "validation_error")  # grace
    r = client.delete(f"/v1/keys/{body['key']['id']}", headers=ADMIN)
    assert r.status_code == 200 and r.get_json()["key"]["revoked_at"]
    assert_error(client.post("/v1/verify", headers=kiosk, json={}), 401, "unauthorized")
    assert_error(client.post("/v1/verify", headers=new_kiosk, json={}), 400, "validation_error")
    config_id = next(k["id"] for k in listed if k["source"] == "config")
    assert_error(client.delete(f"/v1/keys/{config_id}", headers=ADMIN), 409, "key_in_config")
    assert_error(client.delete("/v1/keys/key_nope", headers=ADMIN), 404, "key_not_found")
    for bad in ({"name": "x"}, {"name": "x", "scopes": "admin"}, {"name": "x", "scopes": ["root"]},
                {"name": "x", "scopes": ["verify"], "expires_in_s": -1}, {"scopes": ["verify"]}):
        assert_error(client.post("/v1/keys", headers=ADMIN, json=bad), 400, "validation_error")
    assert ADMIN_KEY  # the configured admin key stays usable throughout


def test_config_keys_are_changed_only_in_the_configuration(keys, tmp_path):
    settings = load_settings(env={}, data_dir=str(tmp_path), admin_keys="a" * 20)
    engine = open_database("", tmp_path)
    try:
        configured = load_keys(settings, engine, announce=lambda text: pytest.fail("must not create keys"))
        (only,) = configured.list()
        assert only.source == "config" and configured.authenticate("a" * 20).id == only.id
        with pytest.raises(KeyInConfig):
            configured.revoke(only.id)
    finally:
        engine.dispose()


def test_the_cli_creates_lists_rotates_and_revokes_keys(tmp_path, monkeypatch, capsys):
    from enroll.__main__ import main

    monkeypatch.setenv("FACEID_DATA_DIR", str(tmp_path))
    assert main(["keys", "create", "--name", "kiosk", "--scope", "verify", "--scope", "identify",
                 "--expires-in", "90d"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["key"]["scopes"] == ["verify", "identify"] and made["secret"].startswith("fid_")
    assert not (tmp_path / "first-start-keys.txt").exists()  # the CLI never creates first-start keys
    assert main(["keys", "rotate", made["key"]["id"], "--grace", "1h"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["replaced"]["expires_at"] < made["key"]["expires_at"] and rotated["key"]["replaces"]
    assert rotated["key"]["expires_at"] >= made["key"]["expires_at"]  # the same 90-day lifetime, from now
    assert main(["keys", "revoke", rotated["key"]["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["key"]["revoked_at"]
    assert main(["keys", "list"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [made["key"]["id"]]
    assert main(["keys", "revoke", "key_nope"]) == 2
    assert "no such API key" in capsys.readouterr().err
    engine = open_database("", tmp_path)
    try:  # the service, started on this data dir, takes the CLI's keys and creates none of its own
        keys = load_keys(load_settings(env={}, data_dir=str(tmp_path)), engine,
                         announce=lambda text: pytest.fail("must not create keys"))
        assert keys.authenticate(made["secret"]).id == made["key"]["id"]
        assert keys.authenticate(rotated["secret"]) is None
    finally:
        engine.dispose()


def test_a_records_database_that_goes_away_is_503_for_keyed_requests_not_500(make_app, postgres_url, chroma_server):
    """Every request's key is looked up in the records database: when it cannot be reached, keyed requests
    answer 503 store_unavailable (an outage, said as one), never 500, and never let a key through."""
    from sqlalchemy import create_engine

    client = make_app(database_url=postgres_url, chroma_url=chroma_server[0]).test_client()
    assert client.get("/v1/keys", headers=ADMIN).status_code == 200
    made = client.post("/v1/keys", headers=ADMIN, json={"name": "db key", "scopes": ["admin"]}).get_json()
    name = postgres_url.rsplit("/", 1)[1]
    admin_db = create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin_db.connect() as db:  # the database refuses connections and drops the service's
        db.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        db.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        for headers in ({"X-API-Key": made["secret"]}, {"X-API-Key": "wrong-key-0123456789"}):
            assert_error(client.get("/v1/keys", headers=headers), 503, "store_unavailable")
        assert client.get("/healthz").status_code == 200
    finally:
        with admin_db.connect() as db:
            db.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin_db.dispose()
    assert client.get("/v1/keys", headers={"X-API-Key": made["secret"]}).status_code == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def key_tables(request, tmp_path):
    """Two ``Keys`` on one records database, as two workers (or hosts) have: each its own engine."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    engines = [open_database(url, tmp_path) for _ in range(2)]
    yield [Keys(SqlKeyTable(engine)) for engine in engines]
    for engine in engines:
        engine.dispose()


def test_two_admins_revoking_each_other_at_once_leave_one(key_tables):
    """The check and the write are one serialised transaction: exactly one of the two revocations wins."""
    import threading
    first, second = key_tables
    for _ in range(15):
        a, _ = first.create("admin a", ["admin"])
        b, _ = first.create("admin b", ["admin"])
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def revoke(keys: Keys, key_id: str, start: threading.Barrier, outcomes: list[str]) -> None:
            start.wait()
            try:
                keys.revoke(key_id)
                outcomes.append("revoked")
            except LastAdminKey:
                outcomes.append("last_admin_key")
        threads = [threading.Thread(target=revoke, args=(first, b.id, start, outcomes)),
                   threading.Thread(target=revoke, args=(second, a.id, start, outcomes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["last_admin_key", "revoked"]
        active = [k for k in first.list() if "admin" in k.scopes]
        assert len(active) == 1
        first.revoke(active[0].id, keep_an_admin=False)  # the next round starts with no admin key


def test_an_admin_key_about_to_expire_does_not_count(key_tables):
    keys = key_tables[0]
    real, _ = keys.create("real admin", ["admin"])
    keys.create("short-lived admin", ["admin"], expires_in_s=2)
    with pytest.raises(LastAdminKey):
        keys.revoke(real.id)
    with pytest.raises(LastAdminKey):  # a grace does not help: after it, nobody would be admin
        keys.revoke(real.id, grace_s=60)
    keys.create("lasting admin", ["admin"], expires_in_s=2 * 86400)
    assert keys.revoke(real.id).revoked_at is not None
