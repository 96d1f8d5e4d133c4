"""Every request has a budget, and hostile ones cannot spend the others': four clients sending progressive
JPEG scan bombs back to back and one sending a photo of 400 faces, all at once, while a client verifies and
a monitor polls /healthz. Real gunicorn (config/gunicorn.conf.py: one worker, 4 threads), real models, real
payloads built by tests/hostile.py. Before the budgets, four such bombs stalled every request for 103 s and
the 400 faces took the worker from 2.4 to 8.7 GB."""
from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from .helpers import CLIENT, files, start_gunicorn
from .hostile import face_grid, scan_bomb

# It bounds verify's wall-clock time under attack, which a neighbouring test on the other core would stretch.
pytestmark = pytest.mark.serial

# The worker's resident memory after the attack stays under this (README, "Request budgets").
RSS_CEILING = 1536 * 2**20
ATTACK_S = 20.0


def worker_rss(master_pid: int) -> int:
    """Resident bytes of the gunicorn worker under ``master_pid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master_pid:
                status = (stat.parent / "status").read_text()
                return int(status.split("VmRSS:")[1].split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError("no worker process")


@pytest.fixture(scope="module")
def server(tmp_path_factory, settings, app):
    data_dir = tmp_path_factory.mktemp("budget")
    proc, base = start_gunicorn(data_dir, settings.models_dir, FACEID_RATE_LIMITS="false",
                                FACEID_LOG_LEVEL="WARNING")
    yield proc, base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_bombs_and_a_crowd_stop_neither_verify_nor_healthz(server):
    proc, base = server
    r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Kit", "person_id": "kit"},
                      files=files("people/Kit_Harington/0001.jpg", "people/Kit_Harington/0002.jpg"))
    assert r.status_code == 201, r.text
    probe = files("people/Kit_Harington/0003.jpg")
    for _ in range(3):  # warm: both compilations have run
        assert requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"}, files=probe).ok
    bomb, crowd = scan_bomb(7000, 5000), face_grid(20)
    rss_before = worker_rss(proc.pid)
    seen: dict[str, list[tuple[float, int, str | None]]] = defaultdict(list)
    stop_at = time.monotonic() + ATTACK_S

    def keep(kind: str, send, pause: float = 0.0) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                r = send(session)
                code = r.json().get("error", {}).get("code") if r.headers.get("Content-Type") == "application/json" \
                    else None
                seen[kind].append((time.perf_counter() - started, r.status_code, code))
                time.sleep(pause)

    def post(path, data, payload, session):
        return session.post(f"{base}{path}", headers=CLIENT, data=data, files=[("image", ("x.jpg", payload))],
                            timeout=60)
    workers = [threading.Thread(target=keep, args=("bomb", lambda s: post("/v1/identify", {}, bomb, s)))
               for _ in range(4)]
    workers.append(threading.Thread(target=keep, args=(
        "crowd", lambda s: post("/v1/identify", {"all_faces": "true"}, crowd, s))))
    workers.append(threading.Thread(target=keep, args=(
        "verify", lambda s: post("/v1/verify", {"person_id": "kit"}, probe[0][1][1], s), 0.1)))
    workers.append(threading.Thread(target=keep, args=(
        "healthz", lambda s: s.get(f"{base}/healthz", timeout=60), 0.1)))
    for w in workers:
        w.start()
    for w in workers:
        w.join(ATTACK_S + 120)
    assert not any(w.is_alive() for w in workers)

    assert seen["bomb"] and {(s, c) for _, s, c in seen["bomb"]} == {(413, "payload_too_large")}
    assert seen["crowd"] and {(s, c) for _, s, c in seen["crowd"]} == {(422, "too_many_faces")}
    assert {s for _, s, _ in seen["verify"]} == {200} and len(seen["verify"]) >= 10
    assert {s for _, s, _ in seen["healthz"]} == {200}
    slowest = {kind: max(t for t, _, _ in seen[kind]) for kind in ("verify", "healthz")}
    rss_after = worker_rss(proc.pid)
    print({kind: len(v) for kind, v in seen.items()}, slowest, {"rss_mib": (rss_before >> 20, rss_after >> 20)})
    assert slowest["verify"] < 2.0 and slowest["healthz"] < 1.0, slowest
    assert rss_after < RSS_CEILING
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
