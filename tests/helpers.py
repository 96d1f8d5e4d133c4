"""What several test modules share: the error assertion, the real gunicorn the deployment runs (and its keys),
multipart image parts, an HTTP relay to stand between a client and a server, and the headless Chromium
helpers. Fixtures live in ``conftest.py``."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from service.core.records import NewFace, now_iso

from .conftest import fixture_bytes, free_port

ROOT = Path(__file__).resolve().parent.parent
# The keys of every gunicorn that ``start_gunicorn`` starts.
ADMIN = {"X-API-Key": "e2e-admin-key-0123456789"}
CLIENT = {"X-API-Key": "e2e-client-key-0123456789"}


def assert_error(response, status, code):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


class Relay:
    """An HTTP relay on a free loopback port to ``upstream``, for a test to stand between a client and a
    server. ``gate(path, headers)`` runs before each request is forwarded: it may wait, or return a status to
    answer with instead. ``strip``: request headers (lower case) not forwarded."""

    def __init__(self, upstream: str, gate: Callable[[str, Mapping[str, str]], int | None] = lambda *_: None,
                 strip: tuple[str, ...] = ()) -> None:
        dropped = ("host", "content-length", *strip)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refused = gate(self.path, self.headers)
                if refused is not None:
                    self.send_response(refused)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sent = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                r = requests.request(self.command, upstream + self.path, data=body or None, headers=sent,
                                     timeout=60)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = relay

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_gunicorn(data_dir: Path, models_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """The service as deployed (config/gunicorn.conf.py) on a free port, ready. No drain on SIGTERM (no load
    balancer to tell; the drain has its own test in test_operations), so stopping one takes no 5 s."""
    (data_dir / "models").symlink_to(models_dir)  # prepared by the session's app
    port = free_port()
    env = {**os.environ, "FACEID_DATA_DIR": str(data_dir), "FACEID_BIND": f"127.0.0.1:{port}",
           "FACEID_ADMIN_KEYS": ADMIN["X-API-Key"], "FACEID_CLIENT_KEYS": CLIENT["X-API-Key"],
           "FACEID_DRAIN_S": "0", **env}
    log = open(data_dir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                             "service:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:  # listening before the worker is up
            pass
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {(data_dir / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail("gunicorn did not become ready")


def files(*rels):
    return [("image", (r.split("/")[-1], fixture_bytes(r), "image/jpeg")) for r in rels]


def chromium_path() -> str:
    found = os.environ.get("FACEID_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    return found


def wait_js(page, expression: str, timeout: float = 30) -> None:
    """Until ``expression`` is true in the page. (Playwright's wait_for_function polls with eval, which the
    console's CSP forbids; evaluate goes through the debugging protocol.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.1)


def write_chroma_only(data_dir: Path, model_id: str, dim: int,
                      people: list[tuple[str, str, dict, np.ndarray, list[NewFace]]]) -> str:
    """A data dir in the Chroma-only format of the previous version (what ``enroll migrate`` reads): per
    person (id, name, metadata, template, faces). Returns the people's creation time."""
    from service.store.chroma_client import model_collection, open_client, safe_name

    connect, lock = open_client(data_dir)
    client, stamp = connect(), now_iso()
    try:
        persons, faces = (model_collection(client, f"{kind}-{safe_name(model_id)}", model_id, dim,
                                           {"hnsw": {"space": "cosine"}}) for kind in ("persons", "faces"))
        for person_id, name, metadata, template, new_faces in people:
            faces.add(ids=[f.id for f in new_faces], embeddings=[f.embedding.tolist() for f in new_faces],
                      documents=[base64.b64encode(f.crop_jpeg).decode() if f.crop_jpeg else "" for f in new_faces],
                      metadatas=[{"person_id": person_id, "face_id": f.id, "created_at": stamp,
                                  "box": json.dumps(f.box), "quality": json.dumps(f.quality)} for f in new_faces])
            persons.add(ids=[person_id], embeddings=[np.asarray(template, np.float32).tolist()],
                        documents=[name.lower()], metadatas=[{"name": name, "metadata": json.dumps(metadata),
                                                              "created_at": stamp, "updated_at": stamp}])
    finally:
        if lock:
            lock.release()
    return stamp
