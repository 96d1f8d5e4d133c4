"""Bulk import progress (issue 23): ``enroll import --url`` reports its counts (``POST /v1/imports/{run_id}``,
with its own ``enroll`` key) and an admin reads the latest report of each recent run (``GET /v1/imports``) from
the audit table, from any worker. A real import's reports are checked in ``test_bulk``, the console's page in
``test_admin_console``."""
from .conftest import ADMIN, CLIENT
from .helpers import assert_error

REPORT = {"source": "staff-photos", "state": "running", "started_at": "2026-12-03T08:00:00Z", "total": 20,
          "done": 4, "enrolled": 3, "rejected": 1, "photos_per_s": 2.0}


def test_an_admin_reads_the_latest_report_of_each_run(make_app):
    client = make_app().test_client()
    r = client.post("/v1/imports/run-a", headers=CLIENT, json=REPORT)
    assert r.status_code == 202 and r.get_json() == {"run_id": "run-a", "recorded": True}
    other = {**REPORT, "source": "visitors", "done": 2, "enrolled": 2, "rejected": 0}
    assert client.post("/v1/imports/run-b", headers=CLIENT, json=other).status_code == 202
    assert client.post("/v1/imports/run-a", headers=CLIENT,
                       json={**REPORT, "state": "finished", "done": 20, "enrolled": 12, "added": 5,
                             "already_there": 1, "rejected": 2}).status_code == 202

    runs = client.get("/v1/imports", headers=ADMIN).get_json()["items"]
    assert [(r["run_id"], r["source"], r["state"], r["done"], r["total"]) for r in runs] == [
        ("run-a", "staff-photos", "finished", 20, 20), ("run-b", "visitors", "running", 2, 20)]
    finished, running = runs
    assert (finished["enrolled"], finished["added"], finished["already_there"], finished["rejected"],
            finished["not_enrolled"]) == (12, 5, 1, 2, 0)
    assert finished["eta_s"] is None and running["eta_s"] == 9.0  # 18 photos left at 2 a second
    assert running["started_at"] == REPORT["started_at"] and 0 <= running["quiet_s"] < 30
    assert running["actor"] and running["actor"] not in CLIENT["X-API-Key"]  # the key's id, never the key
    assert [r["run_id"] for r in client.get("/v1/imports?limit=1", headers=ADMIN).get_json()["items"]] == ["run-a"]


def test_reports_and_their_reading_are_refused_without_the_right_key_or_shape(make_app):
    client = make_app().test_client()
    assert_error(client.post("/v1/imports/run-a", json=REPORT), 401, "unauthorized")
    made = client.post("/v1/keys", headers=ADMIN, json={"name": "verifier", "scopes": ["verify"]}).get_json()
    assert_error(client.post("/v1/imports/run-a", headers={"X-API-Key": made["secret"]}, json=REPORT), 403,
                 "forbidden")
    assert_error(client.get("/v1/imports", headers=CLIENT), 403, "forbidden")  # who imports what: admins only
    for run_id, body, field in (("run a", REPORT, "run_id"), ("r" * 65, REPORT, "run_id"),
                                ("run-a", {**REPORT, "done": 21}, "done"),
                                ("run-a", {**REPORT, "state": "paused"}, "state"),
                                ("run-a", {k: v for k, v in REPORT.items() if k != "total"}, "total"),
                                ("run-a", {**REPORT, "photos_per_s": -1}, "photos_per_s")):
        error = assert_error(client.post(f"/v1/imports/{run_id}", headers=CLIENT, json=body), 400,
                             "validation_error")
        assert error["details"]["field"] == field, error
    assert client.get("/v1/imports", headers=ADMIN).get_json()["items"] == []  # nothing refused was kept


def test_with_the_audit_table_off_reports_are_taken_but_not_readable(make_app):
    client = make_app(audit_table=False).test_client()
    r = client.post("/v1/imports/run-a", headers=CLIENT, json=REPORT)
    assert r.status_code == 202 and r.get_json()["recorded"] is False
    assert_error(client.get("/v1/imports", headers=ADMIN), 404, "not_found")
