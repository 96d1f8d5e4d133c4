"""Running it as an operator does, with a real gunicorn: /metrics parsed with prometheus-client's own parser while
requests move its counters (multiprocess mode), configuration errors named before any worker starts, SIGTERM
draining (/readyz 503 first, requests still served, then a clean exit), and library logs kept quiet."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.logs import configure_logging

from .conftest import ADMIN, CLIENT, upload
from .helpers import ADMIN as E2E_ADMIN
from .helpers import CLIENT as E2E_CLIENT
from .helpers import files, start_gunicorn

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_an_admin_key_or_the_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=CLIENT).status_code == 401
    answer = client.get("/metrics", headers=ADMIN)
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401  # none set


def test_counters_move_with_requests_in_process(client, empty_store):
    before = samples(client.get("/metrics", headers=ADMIN).get_data(as_text=True))
    assert client.post("/v1/persons", headers=CLIENT, data=upload("people/Joe_Biden/0001.jpg", name="Joe",
                                                                   person_id="joe")).status_code == 201
    assert client.post("/v1/verify", headers=CLIENT, data=upload("people/Joe_Biden/0002.jpg",
                                                                 person_id="joe")).status_code == 200
    assert client.post("/v1/verify", headers=CLIENT, data={"person_id": "joe"}).status_code == 415
    after = samples(client.get("/metrics", headers=ADMIN).get_data(as_text=True))
    route = {"method": "POST", "endpoint": "/v1/verify"}
    assert value(after, "faceid_requests_total", status="200", **route) == \
        value(before, "faceid_requests_total", status="200", **route) + 1
    assert value(after, "faceid_request_seconds_count", **route) == value(before, "faceid_request_seconds_count",
                                                                          **route) + 2
    assert value(after, "faceid_decisions_total", op="verify", decision="match") == \
        value(before, "faceid_decisions_total", op="verify", decision="match") + 1
    assert sum(v for (n, _), v in after.items() if n == "faceid_errors_total") == \
        sum(v for (n, _), v in before.items() if n == "faceid_errors_total") + 1
    assert value(after, "faceid_detect_seconds_count") >= value(before, "faceid_detect_seconds_count") + 2
    assert value(after, "faceid_embed_seconds_count") >= value(before, "faceid_embed_seconds_count") + 2
    assert value(after, "faceid_gallery_persons") == 1


@pytest.fixture(scope="module")
def metered(tmp_path_factory, settings, app):
    """gunicorn with the metrics token, Prometheus's multiprocess directory and a 3 s drain."""
    data_dir = tmp_path_factory.mktemp("metered")
    metrics_dir = data_dir / "prometheus"
    proc, base = start_gunicorn(data_dir, settings.models_dir, FACEID_METRICS_TOKEN=TOKEN, FACEID_DRAIN_S="3",
                                FACEID_RATE_LIMIT_PER_KEY="1000/minute",
                                FACEID_RATE_LIMIT_VERIFY_PER_PERSON="1000/minute",
                                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    yield proc, base, data_dir
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def scrape(base: str) -> dict:
    answer = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def test_metrics_over_gunicorn_in_multiprocess_mode(metered):
    proc, base, data_dir = metered
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"},
                        timeout=5).status_code == 401
    before = scrape(base)
    register = requests.post(f"{base}/v1/persons", headers=E2E_CLIENT, data={"name": "Joe", "person_id": "joe"},
                             files=files("people/Joe_Biden/0001.jpg"), timeout=60)
    assert register.status_code == 201, register.text
    for _ in range(2):
        assert requests.post(f"{base}/v1/verify", headers=E2E_CLIENT, data={"person_id": "joe"},
                             files=files("people/Joe_Biden/0002.jpg"), timeout=60).status_code == 200
    stranger = requests.post(f"{base}/v1/identify", headers=E2E_ADMIN, files=files("people/Barack_Obama/0001.jpg"),
                             timeout=60)
    assert stranger.status_code == 200 and stranger.json()["faces"][0]["match"] is None
    assert requests.post(f"{base}/v1/verify", headers={"X-API-Key": "not-a-key-0123456789"},
                         data={"person_id": "joe"}, timeout=10).status_code == 401
    after = scrape(base)
    verify = {"method": "POST", "endpoint": "/v1/verify"}
    assert value(after, "faceid_requests_total", status="200", **verify) == \
        value(before, "faceid_requests_total", status="200", **verify) + 2
    assert value(after, "faceid_decisions_total", op="verify", decision="match") == \
        value(before, "faceid_decisions_total", op="verify", decision="match") + 2
    assert value(after, "faceid_decisions_total", op="identify", decision="unknown") == \
        value(before, "faceid_decisions_total", op="identify", decision="unknown") + 1
    assert value(after, "faceid_errors_total", code="unauthorized", status="401") >= \
        value(before, "faceid_errors_total", code="unauthorized", status="401") + 1
    assert value(after, "faceid_detect_seconds_count") >= value(before, "faceid_detect_seconds_count") + 4
    assert value(after, "faceid_gallery_persons") == 1
    assert ("faceid_audit_queue_depth", ()) in after
    assert any((data_dir / "prometheus").glob("*.db"))  # the samples went through the multiprocess files


def test_rate_limit_hits_are_counted(client, make_app):
    limited = make_app(rate_limit_per_key="2/minute").test_client()
    for _ in range(3):
        limited.get("/v1/persons/nobody", headers=ADMIN)
    found = samples(limited.get("/metrics", headers=ADMIN).get_data(as_text=True))
    assert value(found, "faceid_rate_limited_total", endpoint="/v1/persons/<person_id>") >= 1
    assert value(found, "faceid_errors_total", code="rate_limited", status="429") >= 1


def test_sigterm_drains_before_stopping(metered):
    """After SIGTERM /readyz answers 503 at once while verify keeps answering 200 for the drain; then the
    process exits cleanly by itself."""
    proc, base, data_dir = metered
    results: list[int | str] = []
    stop = threading.Event()

    def keep_verifying() -> None:
        while not stop.is_set():
            try:
                results.append(requests.post(f"{base}/v1/verify", headers=E2E_CLIENT, data={"person_id": "joe"},
                                             files=files("people/Joe_Biden/0002.jpg"), timeout=30).status_code)
            except requests.RequestException as exc:
                results.append(type(exc).__name__)
                return  # the server has stopped accepting

    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    joe = requests.post(f"{base}/v1/persons", headers=E2E_CLIENT, data={"name": "Joe", "person_id": "joe"},
                        files=files("people/Joe_Biden/0001.jpg"), timeout=60)
    assert joe.status_code in (201, 409)  # 409: the metrics test registered him already
    worker = threading.Thread(target=keep_verifying)
    worker.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    ready_codes = []
    while time.monotonic() - signalled < 2.0:
        ready_codes.append(requests.get(f"{base}/readyz", timeout=5).status_code)
        time.sleep(0.2)
    served_while_draining = len([r for r in results if r == 200])
    # The master forwards the signal to the worker: the first probe may still be answered before it lands.
    assert 503 in ready_codes[:3] and set(ready_codes[ready_codes.index(503):]) == {503}
    time.sleep(0.5)
    assert len([r for r in results if r == 200]) > served_while_draining  # still serving during the drain
    assert proc.wait(timeout=60) == 0
    stop.set()
    worker.join(timeout=60)
    assert all(r == 200 for r in results[:-1]) and results[0] == 200, results
    assert time.monotonic() - signalled >= 3.0
    assert any((data_dir / "prometheus").glob("*.db"))  # the operator's PROMETHEUS_MULTIPROC_DIR is theirs


def test_a_metrics_directory_made_at_start_goes_at_exit(tmp_path, settings, app):
    """Without PROMETHEUS_MULTIPROC_DIR each start makes its samples' directory in the temporary directory, and
    removes it when it stops: restarts must not pile them up there."""
    scratch, data_dir = tmp_path / "tmp", tmp_path / "data"
    scratch.mkdir()
    data_dir.mkdir()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # gunicorn gets the tests' environment
    proc, base = start_gunicorn(data_dir, settings.models_dir, TMPDIR=str(scratch))
    try:
        assert requests.get(f"{base}/metrics", headers=E2E_ADMIN, timeout=10).status_code == 200
        made = list(scratch.glob("faceid-metrics-*"))
        assert len(made) == 1 and any(made[0].glob("*.db")), made
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not list(scratch.glob("faceid-metrics-*"))


def _gunicorn_refuses(tmp_path: Path, **env: str) -> str:
    environment = {**os.environ, "FACEID_DATA_DIR": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "service:create_app()"],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Booting worker" not in out.stderr and "Traceback" not in out.stderr
    assert "model preparation failed" not in out.stderr
    return out.stderr


@pytest.mark.parametrize(("env", "named"), [
    ({"FACEID_CONFIG": "/nonexistent/faceid.toml"}, "FACEID_CONFIG names /nonexistent/faceid.toml"),
    ({"FACEID_DATABASE_URL": "postgres://u:p@db/faceid"}, "postgresql+psycopg://"),
    ({"FACEID_ADMIN_KEYS": "short"}, "at least 16 characters"),
])
def test_configuration_errors_are_named_before_any_worker(tmp_path, env, named):
    stderr = _gunicorn_refuses(tmp_path, **env)
    assert stderr.startswith("faceid: configuration error:") and named in stderr


def test_prepare_names_a_configuration_error_as_such(tmp_path):
    out = subprocess.run([sys.executable, "-m", "service.prepare"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "FACEID_DATA_DIR": str(tmp_path), "FACEID_CONFIG": "/nonexistent.toml"},
                         timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("configuration error: FACEID_CONFIG names")


def test_library_request_lines_are_quiet(caplog):
    configure_logging("INFO")
    for name in ("httpx", "httpcore", "chromadb"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger("faceid.http").isEnabledFor(logging.INFO)


def test_the_grafana_dashboard_charts_only_exported_metrics(client):
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    charted = {re.sub(r"_(bucket|total|count|sum)$", "", name)
               for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"faceid_[a-z_]+", target["expr"])}
    exported = {family.name for family in
                text_string_to_metric_families(client.get("/metrics", headers=ADMIN).get_data(as_text=True))}
    assert charted and charted <= exported, charted - exported
