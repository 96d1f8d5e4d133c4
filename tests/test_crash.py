"""kill -9 in the middle of register and delete streams, again and again: no acknowledged write is lost, no
erased person comes back, and after the restart nothing is half-written (every person with all their faces,
the index holding exactly the persons of the records)."""
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.compose import open_store
from service.config import load_settings

from .crash_writer import DIM

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)

KILLS = 12
ROOT = Path(__file__).resolve().parent.parent


def test_sigkill_during_register_and_delete_streams_loses_nothing(tmp_path):
    created, deleting, deleted = set(), set(), set()
    rng = random.Random(7)
    for run in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-m", "tests.crash_writer", str(tmp_path), str(run)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        assert first.strip() == "open", first + proc.stderr.read()
        time.sleep(rng.uniform(0.05, 0.6))  # mid-stream, at a random point of some write
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        for line in out.splitlines():
            verb, _, person_id = line.partition(" ")
            {"created": created, "deleting": deleting, "deleted": deleted}[verb].add(person_id)
    assert len(created) > 2 * KILLS and deleted  # the streams really ran

    store = open_store(load_settings(env={}, data_dir=str(tmp_path)), "crash-model", DIM)  # a restart
    try:
        people, total = store.list_persons(limit=100_000, offset=0)
        ids = {p.id for p in people}
        assert created - deleting <= ids, "an acknowledged registration was lost"
        assert not ids & deleted, "an acknowledged erasure came back"
        assert all(p.face_count == 2 for p in people), "a half-written person"
        assert store.index.ids(store.gallery().collection) == ids, "the index and the records disagree"
        for person_id in ids:
            hit = store.nearest_persons(store.template_of(person_id), 1)
            assert hit and hit[0].person_id == person_id
        assert store.reconcile() == {"added": 0, "refreshed": 0, "removed": 0}
    finally:
        store.close()
