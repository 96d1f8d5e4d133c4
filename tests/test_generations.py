"""Index upkeep on one instance never shows on another. Two real gunicorn instances share a real PostgreSQL
and a real `chroma run`; clients verify, identify, register and erase through both without pause while a
third process runs `enroll rebuild-index`, then `enroll reindex`, then `enroll compact` on the same stores.
Every answer is 2xx (or 429), every acknowledged write is there afterwards, and the index holds exactly the
records. Then the index server is stopped (SIGSTOP): identify answers 503 within its deadline, verify and
/healthz keep answering, a client that retries a registration ends with one person, and everything recovers
once the server runs again, without a restart."""
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from service.compose import open_store
from service.config import replace
from service.web.context import get_recognizer

from .helpers import ADMIN, CLIENT, ROOT, files, start_gunicorn

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)


def _env(chroma_url: str, database_url: str, duplicates: str = "reject") -> dict[str, str]:
    return {"FACEID_CHROMA_URL": chroma_url, "FACEID_DATABASE_URL": database_url, "FACEID_RATE_LIMITS": "false",
            "FACEID_INDEX_TIMEOUT_S": "2", "FACEID_DUPLICATE_POLICY": duplicates}


class Traffic:
    """Client threads against the instances, recording every answer."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.codes: collections.Counter[int] = collections.Counter()
        self.wrong: list[str] = []
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.threads: list[threading.Thread] = []

    def start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def reader(self, base: str) -> None:
        while not self.stop.is_set():
            r = requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"},
                              files=files("people/Kit_Harington/0003.jpg"), timeout=30)
            self.codes[r.status_code] += 1
            if r.status_code == 200 and r.json()["match"] is not True:
                self.wrong.append(f"verify {r.text}")
            r = requests.post(f"{base}/v1/identify", headers=CLIENT, files=files("people/Joe_Biden/0002.jpg"),
                              timeout=30)
            self.codes[r.status_code] += 1
            if r.status_code == 200 and (r.json()["faces"][0]["match"] or {}).get("person_id") != "biden":
                self.wrong.append(f"identify {r.text}")

    def writer(self, base: str) -> None:
        n = 0
        while not self.stop.is_set():
            person_id = f"w{n}"
            r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": person_id, "person_id": person_id},
                              files=files("people/Alex_Lacamoire/0001.jpg"), timeout=30)
            self.codes[r.status_code] += 1
            if r.status_code == 201:
                self.created.add(person_id)
            if n % 2 == 1:
                gone = f"w{n - 1}"
                r = requests.delete(f"{base}/v1/persons/{gone}", headers=ADMIN, timeout=30)
                self.codes[r.status_code] += 1
                if r.status_code == 200:
                    self.deleted.add(gone)
            n += 1


def _cli(data_dir: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "enroll", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "FACEID_DATA_DIR": str(data_dir), **env})
    assert done.returncode == 0, done.stderr[-3000:]


def test_upkeep_on_one_instance_never_disturbs_the_others(tmp_path, settings, app, chroma_server, postgres_url):
    chroma_url, chroma_proc = chroma_server
    env = _env(chroma_url, postgres_url)
    dirs = [tmp_path / name for name in ("a", "b", "cli")]
    for d in dirs:
        d.mkdir()
    # b's writer registers one face again and again: b allows duplicates, a (and the CLI) refuses them
    (a, base_a), (b, base_b) = (start_gunicorn(dirs[0], settings.models_dir, **env),
                                start_gunicorn(dirs[1], settings.models_dir, **_env(chroma_url, postgres_url, "allow")))
    try:
        for person_id, photo in (("kit", "Kit_Harington/0001.jpg"), ("biden", "Joe_Biden/0001.jpg")):
            r = requests.post(f"{base_a}/v1/persons", headers=CLIENT, data={"name": person_id, "person_id": person_id},
                              files=files(f"people/{photo}"))
            assert r.status_code == 201, r.text

        traffic = Traffic()
        traffic.start(traffic.reader, base_a)
        traffic.start(traffic.reader, base_b)
        traffic.start(traffic.writer, base_b)
        (dirs[2] / "models").symlink_to(settings.models_dir)
        time.sleep(2)
        _cli(dirs[2], env, "rebuild-index")
        _cli(dirs[2], env, "reindex", "--from", "sface")
        _cli(dirs[2], env, "compact")
        _cli(dirs[2], env, "rebuild-index")  # the first rebuild's generation is retired and dropped now
        time.sleep(3)
        traffic.join()

        assert set(traffic.codes) <= {200, 201, 429}, traffic.codes
        assert traffic.codes[200] > 20 and len(traffic.created) > 5, traffic.codes
        assert not traffic.wrong, traffic.wrong[:3]
        listed = _everyone(base_a)
        assert set(listed) == {"kit", "biden"} | (traffic.created - traffic.deleted)

        recognizer = get_recognizer(app)
        store = open_store(replace(settings, data_dir=dirs[2], chroma_url=chroma_url, database_url=postgres_url),
                           recognizer.model_id, recognizer.pipeline.embedder.dim)
        try:
            gallery = store.gallery()
            assert gallery.generation == 3 and gallery.persons == len(listed)
            assert store.index.ids(gallery.collection) == set(listed)
            assert store.index.names() <= {gallery.collection, gallery.retired}
            settings_back = store.index.settings_of(gallery.collection)
            assert (settings_back["max_neighbors"], settings_back["ef_construction"], settings_back["ef_search"]) == (
                settings.store.index_hnsw_m, settings.store.index_hnsw_construction_ef,
                settings.store.index_hnsw_search_ef)
        finally:
            store.close()

        _the_index_stops_and_comes_back(base_a, chroma_proc)
    finally:
        for proc in (a, b):
            proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            proc.wait(timeout=30)


def _everyone(base: str) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        page = requests.get(f"{base}/v1/persons?limit=100{cursor}", headers=ADMIN).json()
        ids += [p["id"] for p in page["items"]]
        if not page.get("next_cursor"):
            return ids
        cursor = f"&cursor={page['next_cursor']}"


def _timed(call) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def _the_index_stops_and_comes_back(base: str, chroma_proc: subprocess.Popen) -> None:
    chroma_proc.send_signal(signal.SIGSTOP)
    try:
        stopped_until = time.monotonic() + 30
        answers = collections.Counter()
        retried = 0
        while time.monotonic() < stopped_until:
            r, took = _timed(lambda: requests.post(f"{base}/v1/identify", headers=CLIENT,
                                                   files=files("people/Joe_Biden/0002.jpg"), timeout=30))
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
            assert took < 8, took  # the index deadline (2 s), not the 45 s of a hung call
            r, took = _timed(lambda: requests.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "kit"},
                                                   files=files("people/Kit_Harington/0003.jpg"), timeout=30))
            assert r.status_code == 200 and r.json()["match"] is True and took < 5, (r.text, took)
            r, took = _timed(lambda: requests.get(f"{base}/healthz", timeout=30))
            assert r.status_code == 200 and took < 1, took
            r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Rose"},
                              files=files("people/Rose_Leslie/0001.jpg"), timeout=30)
            answers[r.status_code] += 1
            assert r.status_code == 503, r.text  # the duplicate check needs the index: nothing was written
            retried += 1
    finally:
        chroma_proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 60
    while True:  # the client retries the registration until it succeeds: one person, not one per retry
        r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Rose"},
                          files=files("people/Rose_Leslie/0001.jpg"), timeout=30)
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 201, r.text
    listed = requests.get(f"{base}/v1/persons?q=rose&limit=100", headers=ADMIN).json()
    assert len(listed["items"]) == 1, (retried, listed)
    r = requests.post(f"{base}/v1/identify", headers=CLIENT, files=files("people/Rose_Leslie/0002.jpg"))
    assert r.status_code == 200 and r.json()["faces"][0]["match"]["person_id"] == listed["items"][0]["id"]
    assert requests.get(f"{base}/readyz").status_code == 200
