"""The index's centre (ranking only) and its generations: a centred index ranks by centred cosines but every
answer carries the raw template's score, so decisions do not move; a generation built without the centre is
still searched in its own space, and a rebuild moves the index into the centred one."""
import numpy as np
import pytest

from service.compose import open_store
from service.config import replace
from service.core.records import NewFace
from service.store.chroma_index import Centre

DIM = 16


def _store(settings, tmp_path, centre: np.ndarray | None):
    import json
    path = tmp_path / "centres.json"
    path.write_text(json.dumps({"centre-model": {"centre": centre.tolist()}} if centre is not None else {}))
    return open_store(replace(settings, data_dir=tmp_path / "data", index_centres_file=path), "centre-model", DIM)


def _people(rng, n: int, common: np.ndarray) -> np.ndarray:
    """Unit vectors with a large shared component, as real face embeddings have."""
    v = rng.normal(size=(n, DIM)).astype(np.float32) * 0.3 + common
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_centred_search_returns_raw_scores_and_follows_the_generation(settings, tmp_path):
    rng = np.random.default_rng(3)
    common = np.zeros(DIM, np.float32)
    common[0] = 1.0
    people = _people(rng, 50, common)
    probe = people[7] + 0.05 * rng.normal(size=DIM).astype(np.float32)
    probe /= np.linalg.norm(probe)

    store = _store(settings, tmp_path, None)  # built uncentred
    try:
        for i, v in enumerate(people):
            store.create_person(person_id=f"p{i}", name=f"P{i}", metadata={}, faces=[NewFace(v, {}, {})], template=v)
        plain = store.nearest_persons(probe, 3)
    finally:
        store.close()

    centre = people.mean(axis=0)
    store = _store(settings, tmp_path, centre)
    try:
        assert store.index.centre is not None
        # the old generation is still searched in the space it was built in
        assert [(c.person_id, round(c.similarity, 5)) for c in store.nearest_persons(probe, 3)] == [
            (c.person_id, round(c.similarity, 5)) for c in plain]
        store.rebuild()
        gallery = store.gallery()
        meta = store.index.client.get_collection(gallery.collection).metadata
        assert meta["centre"] == Centre.of(centre).id
        hits = store.nearest_persons(probe, 3)
        assert hits[0].person_id == "p7"
        assert abs(hits[0].similarity - float(people[7] @ probe)) < 1e-5  # the raw cosine, not the centred one
        raw = store.index.query(gallery.collection, probe, 1)[0][1]
        assert abs(raw - float(Centre.of(centre).apply(people[7]) @ Centre.of(centre).apply(probe))) < 1e-3
        store.create_person(person_id="new", name="New", metadata={}, faces=[NewFace(probe, {}, {})], template=probe)
        assert store.nearest_persons(probe, 1)[0].person_id == "new"  # written centred, found centred
    finally:
        store.close()


def test_hnsw_settings_are_set_at_creation_and_hold_after_a_restart(settings, tmp_path):
    chosen = replace(settings, data_dir=tmp_path / "data", index_hnsw_m=24, index_hnsw_construction_ef=150,
                     index_hnsw_search_ef=120)
    for _ in range(2):  # created, then reopened from its files
        store = open_store(chosen, "hnsw-model", DIM)
        try:
            got = store.index.settings_of(store.gallery().collection)
            assert (got["max_neighbors"], got["ef_construction"], got["ef_search"]) == (24, 150, 120)
        finally:
            store.close()


def _recall(store, vectors: np.ndarray, queries: np.ndarray) -> float:
    """Share of queries whose top index hit is their exact nearest vector."""
    name = store.gallery().collection
    truth = (queries @ vectors.T).argmax(axis=1)
    return float(np.mean([store.index.query(name, q, 1)[0][0] == f"p{t}" for q, t in zip(queries, truth)]))


@pytest.mark.parametrize("mode", ["embedded", "server"])
def test_a_changed_search_ef_reaches_an_existing_generation_after_a_restart(settings, tmp_path, mode):
    """Search ef, unlike M and construction ef, needs no rebuild: a store opened with another search ef than
    its generation was created with searches with the configured one from its start (embedded), or from the
    Chroma server's next restart. A tiny graph (M 4, construction ef 10) makes the difference large."""
    from .conftest import start_chroma_server, stop

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(5000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(200, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    server = tmp_path / "chroma"
    url, proc = start_chroma_server(server) if mode == "server" else ("", None)
    try:
        small = replace(settings, data_dir=tmp_path / "data", chroma_url=url, index_hnsw_m=4,
                        index_hnsw_construction_ef=10, index_hnsw_search_ef=10)
        store = open_store(small, "ef-model", 32)
        try:
            store.index.fill(store.gallery().collection, [(f"p{i}", v) for i, v in enumerate(vectors)])
            before = _recall(store, vectors, queries)  # Chroma now holds the index, searched at ef 10
        finally:
            store.index.client.close()  # what the process's exit does (store.close() keeps Chroma's cache)
            store.close()
        if proc is not None:
            stop(proc)
            url, proc = start_chroma_server(server)
        store = open_store(replace(small, chroma_url=url, index_hnsw_search_ef=400), "ef-model", 32)
        try:
            got = store.index.settings_of(store.gallery().collection)
            assert (got["max_neighbors"], got["ef_construction"], got["ef_search"]) == (4, 10, 400)
            after = _recall(store, vectors, queries)
        finally:
            store.close()
        assert before < 0.5 and after > before + 0.3, (before, after)
    finally:
        if proc is not None:
            stop(proc)


def test_a_second_rebuild_while_one_runs_is_refused_at_once(settings, tmp_path):
    from service.errors import StoreUnavailable
    from service.store.database import REBUILD_KEY, serialized

    store = open_store(replace(settings, data_dir=tmp_path / "data"), "rebuild-model", DIM)
    try:
        with serialized(store.engine, store.lock_file.parent / "rebuild.lock", key=REBUILD_KEY):  # one runs
            with pytest.raises(StoreUnavailable, match="another rebuild"):
                store.rebuild()
        assert store.rebuild()["generation"] == 2  # once it is done, the next one runs
    finally:
        store.close()


def test_a_fill_in_several_batches_indexes_everyone_once(settings, tmp_path):
    """A rebuild fills a generation in batches (``fill_batch``: 5,000 embedded, or fewer if the client takes
    fewer): a gallery that is not a multiple of the batch lands whole, and the batch never exceeds the client's
    limit."""
    from service.store.chroma_index import FILL_BATCH

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(23, DIM)).astype(np.float32)
    store = open_store(replace(settings, data_dir=tmp_path / "data"), "fill-model", DIM)
    try:
        index = store.index
        assert index.fill_batch() == min(FILL_BATCH, index.client.get_max_batch_size())
        index.create("index-fill-model-g9")
        added = index.fill("index-fill-model-g9", ((f"p{i}", v) for i, v in enumerate(vectors)), batch=5)
        assert added == 23
        assert index.ids("index-fill-model-g9") == {f"p{i}" for i in range(23)}
        hits = index.query("index-fill-model-g9", vectors[22], 1)
        assert hits[0][0] == "p22"  # the last, partial batch is searchable too
    finally:
        store.close()


def test_a_server_fill_is_not_bound_by_a_requests_http_deadline(settings, tmp_path, chroma_server):
    """A rebuild's batch of inserts into a large graph can take a loaded server longer than a request's
    deadline (a 1M rebuild failed on a ReadTimeout): while a fill runs, the HTTP bound is the fill's, and the
    request's is back after. Here the request bound is cut to 10 ms, which no batch of 500 inserts meets."""
    import httpx

    from service.store.chroma_client import bound_calls

    url, _ = chroma_server
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(1500, 64)).astype(np.float32)
    store = open_store(replace(settings, data_dir=tmp_path / "data", chroma_url=url), "slow-fill-model", 64)
    try:
        index = store.index
        index.create("index-slow-fill-model-g9")
        bound_calls(index.client, 0.01)
        added = index.fill("index-slow-fill-model-g9", ((f"p{i}", v) for i, v in enumerate(vectors)), batch=500)
        assert added == 1500
        # the request bounds were set back, every one of them (read, write, pool and connect)
        assert bound_calls(index.client, 5.0) == httpx.Timeout(0.01)
        assert len(index.ids("index-slow-fill-model-g9")) == 1500
    finally:
        store.close()
