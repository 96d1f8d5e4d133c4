"""The audit trail in the records database: who (key id), what, on whom, decision, score, request id and
client IP, queryable with GET /v1/audit (admin), paged newest first, purged after the retention."""
import hashlib
import json

from sqlalchemy import insert, select

from service.store.schema import audit_events
from service.web.context import get_audit

from .conftest import ADMIN, CLIENT, CLIENT_KEY, upload
from .helpers import assert_error


def test_decisions_and_refusals_are_queryable_by_person_and_key(make_app):
    app = make_app()
    client = app.test_client()
    r = client.post("/v1/persons", headers=CLIENT, data=upload("people/Kit_Harington/0001.jpg", name="Kit",
                                                                person_id="kit"))
    assert r.status_code == 201, r.get_json()
    r = client.post("/v1/verify", headers={**CLIENT, "X-Request-ID": "req-audit-1"},
                    data=upload("people/Kit_Harington/0002.jpg", person_id="kit"))
    assert r.status_code == 200 and r.get_json()["match"] is True
    assert_error(client.post("/v1/verify", headers={"X-API-Key": "wrong-key-0123456789"}, json={}), 401,
                 "unauthorized")
    assert_error(client.get("/v1/audit", headers=CLIENT), 403, "forbidden")
    page = client.get("/v1/audit?person_id=kit", headers=ADMIN).get_json()
    client_id = "config_" + hashlib.sha256(CLIENT_KEY.encode()).hexdigest()[:12]
    verify = next(e for e in page["items"] if e["op"] == "verify")
    assert verify["actor"] == client_id and verify["decision"] == "match" and verify["similarity"] > 0.5
    assert verify["request_id"] == "req-audit-1" and verify["client_ip"] == "127.0.0.1"
    assert [e["op"] for e in page["items"]] == ["verify", "enroll"]  # newest first
    refused = client.get("/v1/audit?op=matching.verify", headers=ADMIN).get_json()["items"]
    assert refused and refused[0]["decision"] == "unauthorized" and refused[0]["actor"] is None
    everything = json.dumps(client.get("/v1/audit?limit=200", headers=ADMIN).get_json())
    assert CLIENT_KEY not in everything and "wrong-key" not in everything
    first = client.get("/v1/audit?limit=1", headers=ADMIN).get_json()
    second = client.get(f"/v1/audit?limit=1&cursor={first['next_cursor']}", headers=ADMIN).get_json()
    assert second["items"][0]["id"] < first["items"][0]["id"]
    assert_error(client.get("/v1/audit?cursor=abc", headers=ADMIN), 400, "validation_error")


def test_rows_older_than_the_retention_are_purged(make_app):
    """In chunks (PURGE_CHUNK rows a transaction), however many there are."""
    app = make_app(audit_retention_days=1)
    handler = get_audit(app)
    with handler.engine.begin() as db:
        db.execute(insert(audit_events), [{"at": "2020-01-01T00:00:00.000Z", "op": "verify", "details": "{}"}]
                   * 12_001 + [{"at": "2999-01-01T00:00:00.000Z", "op": "verify", "details": "{}"}])
    handler.purge()
    with handler.engine.connect() as db:
        left = [row.at for row in db.execute(select(audit_events.c.at).where(audit_events.c.op == "verify"))]
    assert left == ["2999-01-01T00:00:00.000Z"]


def test_the_table_can_be_switched_off(make_app):
    app = make_app(audit_table=False)
    assert get_audit(app) is None
    assert_error(app.test_client().get("/v1/audit", headers=ADMIN), 404, "not_found")
