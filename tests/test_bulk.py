"""Bulk import while the service serves, and backup/restore, against the real thing: a gunicorn on the embedded
store, the import CLI as a real subprocess (interrupted, killed, re-run), and a restore into a real PostgreSQL."""
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from sqlalchemy import create_engine, inspect

from enroll.__main__ import main
from enroll.backends import DirectBackend
from enroll.importer import Importer, Outcome, Progress, from_csv, from_folder
from service.compose import open_store
from service.config import replace
from service.core.recognizer import Recognizer
from service.store import snapshot
from service.store.database import open_database

from .conftest import FIXTURES, fixture_bytes
from .helpers import ADMIN, CLIENT, ROOT, Relay, files, start_gunicorn

# Person -> photos in the tree: Joe_Biden has one photo without a face among three.
TREE = {"Alex_Lacamoire": ["0001.jpg", "0003.jpg"], "Barack_Obama": ["0001.jpg", "0002.jpg", "0003.jpg"],
        "Joe_Biden": ["0001.jpg", "0002.jpg"], "Kit_Harington": ["0001.jpg", "0002.jpg", "0003.jpg"],
        "Lin_Manuel_Miranda": ["0001.jpg"], "Rose_Leslie": ["0001.jpg", "0002.jpg"]}
GOOD = sum(len(v) for v in TREE.values())


@pytest.fixture(scope="module")
def served(tmp_path_factory, settings, app):  # the app prepares the models they share
    data_dir = tmp_path_factory.mktemp("bulk")
    # the verifier meanwhile asks about one person far past the per-person verify limit: not this test's subject
    proc, base = start_gunicorn(data_dir, settings.models_dir, FACEID_DRAIN_S="0",  # no load balancer to tell
                                FACEID_RATE_LIMIT_VERIFY_PER_PERSON="100000/minute")
    yield base, data_dir
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for person, photos in TREE.items():
        (root / person).mkdir()
        for photo in photos:
            shutil.copy(FIXTURES / "people" / person / photo, root / person / photo)
    shutil.copy(FIXTURES / "no_face" / "dlib__dog.jpg", root / "Joe_Biden" / "0003.jpg")
    return root


def _importer(base: str, tree: Path, key: str, report: Path) -> subprocess.Popen:
    env = {**os.environ, "ENROLL_API_KEY": key}
    # Ctrl-C reaches the importer as from a terminal even where these tests run with SIGINT ignored (a shell's
    # background job): a child inherits an ignored SIGINT, and Python then never raises KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "enroll", "import", str(tree), "--url", base, "--jobs", "2",
                                 "--report", str(report)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _holding(base: str, person_id: str) -> Iterator[tuple[str, threading.Event]]:
    """A relay in front of the service that holds every request naming ``person_id`` in its path (the
    importer's first call for a person) until the event is set: an import through it cannot finish before the
    test's signal lands, however late the test gets to send it (with a 6 s pause before the signal, the import
    was done before it)."""
    released = threading.Event()

    def hold(path: str, _: object) -> None:
        if person_id in path:
            released.wait(60)
    relay = Relay(base, hold)
    try:
        yield relay.url, released
    finally:
        released.set()
        relay.close()


def _stop_after(proc: subprocess.Popen, lines: int, sig: int, released: threading.Event) -> tuple[list[dict], str]:
    """Let the import report ``lines`` outcomes, then send ``sig`` and let the held requests through; its
    outcomes and stderr."""
    seen = [json.loads(proc.stdout.readline()) for _ in range(lines)]
    assert proc.poll() is None, "the import ended before its signal"
    proc.send_signal(sig)
    released.set()
    out, err = proc.communicate(timeout=120)
    return seen + [json.loads(line) for line in out.splitlines()], err


def test_import_while_serving_survives_ctrl_c_and_sigkill(served, tree, tmp_path):
    base, _ = served
    # Someone already known: the import adds their new photo and skips the one they have.
    r = requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": "Rose Leslie", "person_id": "Rose_Leslie"},
                      files=files("people/Rose_Leslie/0001.jpg"))
    assert r.status_code == 201, r.text
    verdicts: list[object] = []
    stop = threading.Event()

    def verify_meanwhile() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(f"{base}/v1/verify", headers=CLIENT, data={"person_id": "Rose_Leslie"},
                           files=files("people/Rose_Leslie/0002.jpg"), timeout=60)
                verdicts.append(r.json().get("match") if r.status_code == 200 else r.status_code)
    verifier = threading.Thread(target=verify_meanwhile)
    verifier.start()
    try:
        report = tmp_path / "rejected.csv"
        # Ctrl-C part-way (the last person, Rose_Leslie, held back until then): the requests in flight finish,
        # the summary is printed, no traceback.
        with _holding(base, "Rose_Leslie") as (relay, released):
            outcomes, err = _stop_after(_importer(relay, tree, CLIENT["X-API-Key"], report), 2, signal.SIGINT,
                                        released)
        assert "Traceback" not in err and '"interrupted": true' in err, err
        # SIGKILL part-way (an enroll-only key: the service itself tells known photos apart)
        with _holding(base, "Rose_Leslie") as (relay, released):
            proc = _importer(relay, tree, CLIENT["X-API-Key"], report)
            outcomes += _stop_after(proc, 3, signal.SIGKILL, released)[0]
        assert proc.returncode == -signal.SIGKILL
        # the re-run finishes the job (an admin key: known photos are skipped without an upload)
        proc = _importer(base, tree, ADMIN["X-API-Key"], report)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    finally:
        stop.set()
        verifier.join(timeout=60)
    last = [json.loads(line) for line in out.splitlines()]
    assert len(last) == GOOD + 1 and {o["status"] for o in last} <= {"enrolled", "added", "already_there",
                                                                      "rejected"}
    assert [o["code"] for o in last if o["status"] == "rejected"] == ["no_face"]
    with report.open() as f:
        assert [(r["person_id"], Path(r["file"]).name, r["code"]) for r in csv.DictReader(f)] == [
            ("Joe_Biden", "0003.jpg", "no_face")]
    summary = json.loads(err.splitlines()[-2])
    assert summary["rejected_by_code"] == {"no_face": 1} and summary["failure"] is None
    # Exact counts: every good photo once, nothing twice, whatever was interrupted where.
    listing = requests.get(f"{base}/v1/persons", headers=ADMIN, params={"limit": 100}).json()
    assert {p["id"]: p["face_count"] for p in listing["items"]} == {p: len(v) for p, v in TREE.items()}
    for person, photos in TREE.items():
        faces = requests.get(f"{base}/v1/persons/{person}", headers=ADMIN).json()["faces"]
        assert sorted(f["source_sha256"] for f in faces) == sorted(
            hashlib.sha256(fixture_bytes(f"people/{person}/{p}")).hexdigest() for p in photos)
    # Joe_Biden: one bad photo of three, enrolled with the two that pass
    assert {o["status"] for o in outcomes + last if o["person_id"] == "Joe_Biden" and o["file"].endswith("3.jpg")} \
        == {"rejected"}
    # 0 failed verifies meanwhile
    assert len(verdicts) >= 3 and all(v is True for v in verdicts), [v for v in verdicts if v is not True]
    # Each run reported its progress, and an admin (the console) reads how each ended: the last run finished
    # with the counts of its summary, the SIGKILLed one never said more than "running" (if its first report
    # got out before the kill), the first was stopped.
    runs = requests.get(f"{base}/v1/imports", headers=ADMIN).json()["items"]
    states = [r["state"] for r in runs]
    assert states[0] == "finished" and states[-1] == "interrupted" and states[1:-1] in ([], ["running"]), states
    assert {r["source"] for r in runs} == {tree.name} and runs[0]["run_id"] == summary["run_id"]
    assert {k: runs[0][k] for k in ("total", "done", "enrolled", "added", "already_there", "rejected")} == {
        "total": summary["photos"], "done": summary["done"], "enrolled": summary["enrolled"],
        "added": summary["added"], "already_there": summary["already_there"], "rejected": summary["rejected"]}


def test_export_while_serving_then_restore_into_postgresql(served, tree, settings, recognizer, postgres_server,
                                                           tmp_path, monkeypatch, capsys):
    base, data_dir = served
    if requests.get(f"{base}/v1/persons", headers=ADMIN).json()["total"] < 3:  # run alone: enrol a few
        for person in ("Kit_Harington", "Joe_Biden", "Barack_Obama"):
            requests.post(f"{base}/v1/persons", headers=CLIENT, data={"name": person, "person_id": person},
                          files=files(*(f"people/{person}/{p}" for p in TREE[person])))
    monkeypatch.setenv("ENROLL_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("FACEID_DATA_DIR", str(data_dir))
    backup = tmp_path / "store.backup"
    assert main(["export", str(backup)]) == 0  # while gunicorn serves the embedded store
    assert backup.stat().st_mode & 0o777 == 0o600
    raw = backup.read_bytes()
    assert b"Kit_Harington" not in raw and b"sqlite" not in raw  # nothing in clear
    capsys.readouterr()

    # a wrong passphrase: a clear error, and the target is not touched at all
    untouched = postgres_server()
    monkeypatch.setenv("FACEID_DATA_DIR", str(tmp_path / "wrong"))
    monkeypatch.setenv("FACEID_DATABASE_URL", untouched)
    monkeypatch.setenv("ENROLL_PASSPHRASE", "not the passphrase")
    assert main(["restore", str(backup)]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    engine = create_engine(untouched)
    assert inspect(engine).get_table_names() == []
    engine.dispose()

    target_url, target_dir = postgres_server(), tmp_path / "restored"
    monkeypatch.setenv("FACEID_DATA_DIR", str(target_dir))
    monkeypatch.setenv("FACEID_DATABASE_URL", target_url)
    monkeypatch.setenv("ENROLL_PASSPHRASE", "correct horse battery staple")
    assert main(["restore", str(backup)]) == 0
    assert main(["restore", str(backup)]) == 2  # only into an empty store
    assert "not empty" in capsys.readouterr().err

    # the same persons and faces, byte for byte (embeddings, crops, templates, hashes, stamps)
    source, restored = open_database("", data_dir), open_database(target_url, target_dir)
    try:
        for table in ("persons", "faces"):
            before = sorted(row for name, row in snapshot.read(source) if name == table)
            after = sorted(row for name, row in snapshot.read(restored) if name == table)
            assert before and before == after
    finally:
        source.dispose()
        restored.dispose()

    # and identify answers the same, on the restored store's rebuilt index
    store = open_store(replace(settings, data_dir=target_dir, database_url=target_url), recognizer.model_id,
                       recognizer.pipeline.embedder.dim)
    try:
        assert store.index_state().lag == 0  # the index was rebuilt from the records
        there = Recognizer(recognizer.pipeline, store, recognizer.calibration, recognizer.policy)
        for probe in ("people/Kit_Harington/0003.jpg", "people/Lin_Manuel_Miranda/0001.jpg"):
            served_answer = requests.post(f"{base}/v1/identify", headers=ADMIN, files=files(probe)).json()
            local = there.identify(fixture_bytes(probe)).faces[0]
            theirs = served_answer["faces"][0]
            assert [c.person_id for c in local.candidates] == [c["person_id"] for c in theirs["candidates"]]
            assert np.allclose([c.similarity for c in local.candidates],
                               [c["similarity"] for c in theirs["candidates"]], atol=1e-3)
            assert (local.match.person_id if local.match else None) == (
                theirs["match"]["person_id"] if theirs["match"] else None)
    finally:
        store.close()


def test_direct_backend_all_or_nothing_then_partial(recognizer, empty_store, tree):
    """The same engine on the recognizer in process, people from a CSV: --all-or-nothing refuses a person with
    one bad photo as a whole; without it the person gets the two that pass, and what is there is skipped."""
    listing = tree / "people.csv"
    listing.write_text("person_id,path,name\n" + "".join(
        f"{p.person_id},{p.path.relative_to(tree)},{p.name}\n" for photos in from_folder(tree) for p in photos
        if p.person_id in ("Joe_Biden", "Lin_Manuel_Miranda")))
    people = from_csv(listing)
    assert [len(p) for p in people] == [3, 1] and people[1][0].name == "Lin Manuel Miranda"

    def run(all_or_nothing: bool) -> dict[tuple[str, str], str]:
        outcomes: list[Outcome] = []
        importer = Importer(DirectBackend(recognizer), jobs=2, all_or_nothing=all_or_nothing,
                            emit=outcomes.append, progress=Progress(4, tty=False, write=print))
        summary = importer.run(people)
        assert summary.failure is None and not summary.interrupted
        return {(o.person_id, Path(o.file).name): o.code or o.status for o in outcomes}

    assert run(True) == {("Joe_Biden", "0001.jpg"): "no_face", ("Joe_Biden", "0002.jpg"): "no_face",
                         ("Joe_Biden", "0003.jpg"): "no_face", ("Lin_Manuel_Miranda", "0001.jpg"): "enrolled"}
    assert empty_store.get_person("Joe_Biden") is None
    assert run(False) == {("Joe_Biden", "0001.jpg"): "enrolled", ("Joe_Biden", "0002.jpg"): "enrolled",
                          ("Joe_Biden", "0003.jpg"): "no_face", ("Lin_Manuel_Miranda", "0001.jpg"): "already_there"}
    assert empty_store.get_person("Joe_Biden").face_count == 2
