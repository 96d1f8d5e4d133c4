"""Erasure is erasure: after a person is deleted and the store compacted, no file of the data dir (SQLite's
records, its write-ahead log, Chroma's database and HNSW files) holds their face crops, face embeddings or
template any more, byte for byte; everyone else is still found."""
import numpy as np

from service.compose import open_store
from service.config import replace
from service.core.records import NewFace
from service.core.vectors import template

DIM = 256


def holds_vector(data: bytes, vector: np.ndarray, n: int = 32, tol: float = 1e-5) -> bool:
    """``n`` consecutive float32 values of ``vector`` anywhere in ``data``, at any alignment, within ``tol``
    (an index may store a renormalised copy that differs in the last bits)."""
    want = np.asarray(vector[:n], np.float32)
    for shift in range(4):
        usable = (len(data) - shift) // 4 * 4
        values = np.frombuffer(data[shift:shift + usable], "<f4")
        with np.errstate(invalid="ignore"):
            for start in np.nonzero(np.abs(values[:len(values) - n + 1] - want[0]) < tol)[0]:
                if np.all(np.abs(values[start:start + n] - want) < tol):
                    return True
    return False


def traces(data_dir, crops, vectors) -> list[str]:
    found = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and "models" not in p.parts):
        data = path.read_bytes()
        found += [f"{path.name}: crop" for crop in crops if crop[100:164] in data]
        found += [f"{path.name}: vector" for v in vectors if holds_vector(data, v)]
    return found


def test_deleted_person_leaves_no_bytes_after_compaction(tmp_path, settings):
    rng = np.random.default_rng(3)

    def unit() -> np.ndarray:
        v = rng.normal(size=DIM).astype(np.float32)
        return v / np.linalg.norm(v)
    store = open_store(replace(settings, data_dir=tmp_path), "erasure-model", DIM)
    try:
        others = {}
        for i in range(40):
            v = unit()
            store.create_person(person_id=f"p{i}", name=f"P {i}", metadata={}, template=v,
                                faces=[NewFace(v, {}, {}, crop_jpeg=b"\xff\xd8" + rng.bytes(3000))])
            others[f"p{i}"] = v
        victim = [unit(), unit()]
        victim_crops = [b"\xff\xd8" + rng.bytes(3000) for _ in victim]
        store.create_person(person_id="ada", name="Ada", metadata={"team": "r&d"}, template=template(victim),
                            faces=[NewFace(v, {}, {}, crop_jpeg=c) for v, c in zip(victim, victim_crops)])
        secrets = [*victim, template(victim)]
        assert traces(tmp_path, victim_crops, secrets)  # the scan sees them while they are stored

        store.delete_person("ada")
        assert store.erasures_pending
        with store.registration_lock():
            store.compact()
        assert not store.erasures_pending
        assert traces(tmp_path, victim_crops, secrets) == []
        for person_id, v in list(others.items())[::7]:  # the others are still there, and found
            assert store.nearest_persons(v, 1)[0].person_id == person_id
        assert store.person_count() == 40 and store.reconcile() == {"added": 0, "refreshed": 0, "removed": 0}
    finally:
        store.close()


def test_scheduled_compaction_runs_at_start_when_something_was_erased(tmp_path, settings, recognizer):
    import time

    from service.core.recognizer import Recognizer
    from service.web import compactor

    store = open_store(replace(settings, data_dir=tmp_path), recognizer.model_id, recognizer.pipeline.embedder.dim)
    rec = Recognizer(recognizer.pipeline, store, recognizer.calibration)
    try:
        assert rec.compact() is None  # nothing erased, nothing to do
        v = np.zeros(store.dim, np.float32)
        v[0] = 1.0
        store.create_person(person_id="x", name="X", metadata={}, faces=[NewFace(v, {}, {})], template=v)
        store.delete_person("x")
        assert store.erasures_marker.exists()
        stop = compactor.start(rec, 3600)
        deadline = time.monotonic() + 30
        while store.erasures_marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        stop()
        assert not store.erasures_marker.exists()
    finally:
        store.close()
