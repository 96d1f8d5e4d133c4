"""kill -9 of the real gunicorn (master and worker) in the middle of registrations and erasures over HTTP, on
the embedded store, again and again: every restart starts, no acknowledged registration is lost, no
acknowledged erasure comes back, and the index holds exactly the records (the outbox replayed at start)."""
import os
import random
import signal
import subprocess
import threading
import time

import pytest
import requests

from service.compose import open_store
from service.config import replace
from service.web.context import get_recognizer

from .helpers import ADMIN, CLIENT, files, start_gunicorn

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)

KILLS = 20


def _stream(base: str, run: int, stop: threading.Event, created: set, deleting: set, deleted: set) -> None:
    """Registers and erases as fast as the server answers; records what was acknowledged, and which erasures
    were asked for (one in flight at the kill may or may not have happened)."""
    mine: list[str] = []
    n = 0
    while not stop.is_set():
        person_id = f"r{run}-{n}"
        n += 1
        try:
            r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": person_id, "person_id": person_id},
                              files=files("people/Alex_Lacamoire/0001.jpg"), timeout=10)
            if r.status_code == 201:
                created.add(person_id)
                mine.append(person_id)
            if n % 2 == 0 and mine:
                gone = mine.pop(0)
                deleting.add(gone)
                r = requests.delete(f"{base}/v1/persons/{gone}", headers=ADMIN, timeout=10)
                if r.status_code == 200:
                    deleted.add(gone)
        except requests.RequestException:
            return  # killed


def test_sigkill_of_gunicorn_during_writes_loses_nothing(tmp_path, settings, app):
    rng = random.Random(11)
    created: set[str] = set()
    deleting: set[str] = set()
    deleted: set[str] = set()
    env = {"FACEID_DUPLICATE_POLICY": "allow", "FACEID_RATE_LIMITS": "false"}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(settings.models_dir)
    for run in range(KILLS):
        run_dir = tmp_path / f"run{run}"  # start_gunicorn links models into its dir: the data dir is shared
        run_dir.mkdir()
        proc, base = start_gunicorn(run_dir, settings.models_dir, FACEID_DATA_DIR=str(data_dir), **env)
        stop = threading.Event()
        threads = [threading.Thread(target=_stream, args=(base, run * 10 + i, stop, created, deleting, deleted))
                   for i in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(1.0, 2.5))
        _kill_all(proc)
        proc.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert len(created) >= KILLS and deleted, (len(created), len(deleted))  # the streams really ran

    recognizer = get_recognizer(app)
    store = open_store(replace(settings, data_dir=data_dir), recognizer.model_id, recognizer.pipeline.embedder.dim)
    try:
        people, _ = store.list_persons(limit=100_000, offset=0)
        ids = {p.id for p in people}
        assert created - deleting <= ids, "an acknowledged registration was lost"
        assert not ids & deleted, "an acknowledged erasure came back"
        assert all(p.face_count == 1 for p in people), "a half-written person"
        assert store.person_count() == len(ids), "the maintained count drifted"
        assert store.index.ids(store.gallery().collection) == ids, "the index and the records disagree"
        assert store.reconcile() == {"added": 0, "refreshed": 0, "removed": 0}
    finally:
        store.close()


def _kill_all(proc) -> None:
    """SIGKILL the master and its workers at once (a host losing the process, not a shutdown)."""
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in [proc.pid, *map(int, children)]:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
