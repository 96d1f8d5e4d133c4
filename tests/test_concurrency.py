"""Two gunicorn workers sharing one PostgreSQL records database and one `chroma run` index: writes that must
be unique hold across processes (the same person id, the same face under different ids: exactly one
registration wins each race), and a key revoked from the CLI fails on every worker from the next request."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from .conftest import start_chroma_server, stop
from .helpers import ADMIN, CLIENT, ROOT, files, start_gunicorn


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, settings, app, postgres_server):
    """(base URL, database URL) of the service with two workers on PostgreSQL and `chroma run`."""
    tmp_path = tmp_path_factory.mktemp("two-workers")
    chroma_url, chroma = start_chroma_server(tmp_path / "chroma")
    database_url = postgres_server()
    proc, base = start_gunicorn(tmp_path, settings.models_dir, FACEID_WORKERS="2", FACEID_THREADS="4",
                                FACEID_CHROMA_URL=chroma_url, FACEID_DATABASE_URL=database_url,
                                FACEID_LOG_LEVEL="INFO")
    for _ in range(240):  # both worker processes serving, not just the first
        if (tmp_path / "server.log").read_text().count("ready") >= 2:
            break
        time.sleep(0.5)
    yield base, database_url, tmp_path / "server.log"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stop(chroma)


def register_all(base, requests_data):
    def one(item):
        person_id, photo = item
        r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": person_id, "person_id": person_id},
                          files=files(photo), timeout=120)
        return r.status_code, (r.json().get("error") or {}).get("code")
    with ThreadPoolExecutor(len(requests_data)) as pool:
        return list(pool.map(one, requests_data))


def test_same_id_and_same_face_races_have_exactly_one_winner(two_workers):
    base, _, _ = two_workers
    same_face = register_all(base, [(f"kit{i}", "people/Kit_Harington/0001.jpg") for i in range(6)])
    assert sorted(same_face).count((201, None)) == 1, same_face
    assert sorted(same_face)[1:] == [(409, "duplicate_face")] * 5, same_face
    photos = ["people/Barack_Obama/0001.jpg", "people/Joe_Biden/0001.jpg", "people/Rose_Leslie/0001.jpg",
              "people/Alex_Lacamoire/0001.jpg", "people/Lin_Manuel_Miranda/0001.jpg"]  # five other people
    same_id = register_all(base, [("same", p) for p in photos])
    assert sorted(same_id).count((201, None)) == 1, same_id
    assert all(r == (409, "person_exists") for r in sorted(same_id)[1:]), same_id
    admin = {"X-API-Key": "e2e-admin-key-0123456789"}
    listed = requests.get(f"{base}/v1/persons?limit=100", headers=admin, timeout=10).json()
    assert listed["total"] == 2 and all(p["face_count"] == 1 for p in listed["items"])


def answered_by_both_workers(base: str, log: Path, key: dict[str, str], tag: str) -> list[requests.Response]:
    """GET /v1/keys with ``key`` on new connections until each of the two workers has answered three times
    (their pids, read from the request log by request id); every answer."""
    answers, by_worker = [], {}
    for i in range(400):
        rid = f"{tag}-{i}"
        answers.append(requests.get(f"{base}/v1/keys", headers={**key, "X-Request-ID": rid}, timeout=10))
        if i % 10 == 9:
            lines = [json.loads(line) for line in log.read_text().splitlines() if f'"{tag}-' in line]
            by_worker = Counter(line["pid"] for line in lines if line.get("msg") == "request")
            if len(by_worker) == 2 and min(by_worker.values()) >= 3:
                return answers
    pytest.fail(f"the requests did not reach both workers: {by_worker}")


def test_a_key_revoked_from_the_cli_fails_at_once_on_every_worker(two_workers, tmp_path):
    base, postgres_url, log = two_workers
    made = requests.post(f"{base}/v1/keys", headers=ADMIN, json={"name": "ops laptop", "scopes": ["admin"]},
                         timeout=10)
    assert made.status_code == 201, made.text
    key_id, key = made.json()["key"]["id"], {"X-API-Key": made.json()["secret"]}
    assert {r.status_code for r in answered_by_both_workers(base, log, key, "before")} == {200}
    env = {**os.environ, "FACEID_DATABASE_URL": postgres_url, "FACEID_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "enroll", "keys", "revoke", key_id], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"]["revoked_at"]
    answers = answered_by_both_workers(base, log, key, "after")
    assert {r.status_code for r in answers} == {401}
    assert {r.json()["error"]["code"] for r in answers} == {"unauthorized"}
