"""The real thing: gunicorn (config/gunicorn.conf.py) on a free port, real HTTP, real photos, a real Chroma in
a temp dir: register -> verify (accept) -> verify another person (reject) -> identify (right person; a
stranger is unknown) -> list -> delete -> verify (404)."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from .conftest import free_port
from .helpers import ADMIN, CLIENT, ROOT, files, start_gunicorn


@pytest.fixture(scope="module")
def server(tmp_path_factory, settings, app):  # the app prepares the models they share
    data_dir = tmp_path_factory.mktemp("e2e")
    proc, base = start_gunicorn(data_dir, settings.models_dir)
    yield base, data_dir
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_identity_lifecycle_over_http(server):
    base, data_dir = server
    r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Kit Harington", "person_id": "kit"},
                      files=files("people/Kit_Harington/0001.jpg", "people/Kit_Harington/0002.jpg"))
    assert r.status_code == 201, r.text
    r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Joe Biden", "person_id": "biden"},
                      files=files("people/Joe_Biden/0001.jpg"))
    assert r.status_code == 201, r.text

    r = requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"},
                      files=files("people/Kit_Harington/0003.jpg"))
    assert r.status_code == 200 and r.json()["match"] is True
    r = requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"},
                      files=files("people/Rose_Leslie/0002.jpg"))
    assert r.status_code == 200 and r.json()["match"] is False

    r = requests.post(f"{base}/v1/identify", headers=CLIENT, files=files("people/Joe_Biden/0002.jpg"))
    assert r.json()["faces"][0]["match"]["person_id"] == "biden"
    r = requests.post(f"{base}/v1/identify", headers=CLIENT, files=files("people/Lin_Manuel_Miranda/0001.jpg"))
    assert r.json()["faces"][0]["match"] is None

    listing = requests.get(f"{base}/v1/persons", headers=ADMIN).json()
    assert listing["total"] == 2 and {p["id"] for p in listing["items"]} == {"kit", "biden"}
    assert requests.delete(f"{base}/v1/persons/kit", headers=ADMIN).status_code == 200
    r = requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"},
                      files=files("people/Kit_Harington/0003.jpg"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "person_not_found"

    # the structured log has the decisions, and never an embedding or image bytes
    log = (data_dir / "server.log").read_text()
    decisions = [json.loads(line) for line in log.splitlines() if '"op": "verify"' in line]
    assert decisions and all(d["request_id"] for d in decisions)  # decisions carry their request id
    assert not re.search(r"(-?\d\.\d+,\s*){16}", log), "a vector was logged"
    assert "\\xff\\xd8" not in log and "/9j/" not in log  # JPEG bytes, raw or base64


def test_a_second_server_on_the_same_data_dir_refuses_to_start(server):
    base, data_dir = server
    env = {**os.environ, "FACEID_DATA_DIR": str(data_dir), "FACEID_BIND": f"127.0.0.1:{free_port()}",
           "FACEID_ADMIN_KEYS": ADMIN["X-API-Key"], "FACEID_CLIENT_KEYS": CLIENT["X-API-Key"]}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                             "service:create_app()"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "in use by pid" in result.stdout + result.stderr


def test_audit_trail_and_gunicorn_lines_are_json(server):
    """Who (key id, never the key), what, on whom, decision, request id and client IP for every decision and
    every refused key, one JSON object per line, in an owner-only file; gunicorn's lines are JSON too."""
    base, data_dir = server
    requests.post(f"{base}/v1/verify", headers={"X-API-Key": "not-a-key-0123456789"},
                  data={"person_id": "kit"}, files=files("people/Kit_Harington/0003.jpg"))
    path = data_dir / "audit.jsonl"
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    verify = [e for e in lines if e.get("op") == "verify"]
    client_id = "config_" + hashlib.sha256(CLIENT["X-API-Key"].encode()).hexdigest()[:12]
    assert verify and all(e["actor"] == client_id for e in verify)
    assert all(e["client_ip"] == "127.0.0.1" and e["request_id"] and "similarity" in e for e in verify)
    erased = [e for e in lines if e.get("op") == "delete_person"]
    assert erased and erased[0]["actor"].startswith("config_") and erased[0]["actor"] != client_id
    assert erased[0]["person_id"] == "kit"
    refused = [e for e in lines if e.get("decision") == "unauthorized"]
    assert refused and refused[-1]["client_ip"] == "127.0.0.1" and "actor" not in refused[-1]
    text = path.read_text()
    assert ADMIN["X-API-Key"] not in text and CLIENT["X-API-Key"] not in text and "not-a-key" not in text
    gunicorn_lines = [line for line in (data_dir / "server.log").read_text().splitlines() if "gunicorn" in line]
    assert gunicorn_lines and all(json.loads(line)["logger"].startswith("gunicorn") for line in gunicorn_lines)
