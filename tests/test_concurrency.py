"""Writes that must be unique hold across processes: two gunicorn workers sharing one PostgreSQL records
database and one `chroma run` index, hit at once with the same person id, and with the same face under
different ids. Exactly one registration wins each race."""
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .test_e2e import CLIENT, files, start_gunicorn


@pytest.fixture()
def two_workers(tmp_path, settings, app, chroma_server, postgres_url):
    proc, base = start_gunicorn(tmp_path, settings.models_dir, FACEID_WORKERS="2", FACEID_THREADS="4",
                                FACEID_CHROMA_URL=chroma_server[0], FACEID_DATABASE_URL=postgres_url,
                                FACEID_LOG_LEVEL="WARNING")
    for _ in range(240):  # both worker processes serving, not just the first
        if (tmp_path / "server.log").read_text().count("ready") >= 2:
            break
        time.sleep(0.5)
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def register_all(base, requests_data):
    def one(item):
        person_id, photo = item
        r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": person_id, "person_id": person_id},
                          files=files(photo), timeout=120)
        return r.status_code, (r.json().get("error") or {}).get("code")
    with ThreadPoolExecutor(len(requests_data)) as pool:
        return list(pool.map(one, requests_data))


def test_same_id_and_same_face_races_have_exactly_one_winner(two_workers):
    base = two_workers
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
