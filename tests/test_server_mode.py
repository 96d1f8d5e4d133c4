"""Scale-out mode: two service instances share one PostgreSQL records database and one `chroma run` index
server, and an index that goes away gives 503 store_unavailable for search (never a 500), while reads of the
records still answer."""
import signal
import time

import pytest

from service.errors import StoreUnavailable

from .conftest import ADMIN, CLIENT, upload
from .helpers import Relay, assert_error

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)


def register_rose_and_find_her(enrolling, searching):
    """Rose registered through one client and identified from another photo through the other."""
    r = enrolling.post("/v1/persons", data=upload("people/Rose_Leslie/0001.jpg", name="Rose Leslie",
                                                  person_id="rose"),
                       content_type="multipart/form-data", headers=CLIENT)
    assert r.status_code == 201, r.get_json()
    found = searching.post("/v1/identify", data=upload("people/Rose_Leslie/0002.jpg"),
                           content_type="multipart/form-data", headers=CLIENT).get_json()
    assert found["faces"][0]["match"]["person_id"] == "rose"


def test_two_instances_share_one_chroma_server(chroma_server, postgres_url, make_app):
    url, _ = chroma_server
    first = make_app(chroma_url=url, database_url=postgres_url).test_client()
    second = make_app(chroma_url=url, database_url=postgres_url).test_client()
    register_rose_and_find_her(first, second)
    assert second.delete("/v1/persons/rose", headers=ADMIN).status_code == 200
    assert_error(first.get("/v1/persons/rose", headers=ADMIN), 404, "person_not_found")


def test_store_going_away_is_503_store_unavailable(chroma_server, make_app):
    url, proc = chroma_server
    client = make_app(chroma_url=url).test_client()
    assert client.get("/readyz").status_code == 200
    proc.kill()
    proc.wait(timeout=10)
    assert_error(client.post("/v1/identify", data=upload("people/Rose_Leslie/0002.jpg"),
                             content_type="multipart/form-data", headers=CLIENT), 503, "store_unavailable")
    assert client.get("/v1/persons", headers=ADMIN).status_code == 200  # the records do not need the index
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["store"] is False


def test_a_start_against_a_stopped_chroma_server_fails_in_bounded_time(chroma_server, make_app):
    """A server that accepts connections and never answers (SIGSTOP): Chroma's client asks it who we are while
    it is constructed, with no timeout, and the start used to hang for good. Now it fails within the index
    deadline, naming the server, and starts once the server runs again."""
    url, proc = chroma_server
    make_app(chroma_url=url)  # the collections exist: a later start only has to reach them
    proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer"):
            make_app(chroma_url=url, index_timeout_s=2.0)
        assert time.monotonic() - started < 20
    finally:
        proc.send_signal(signal.SIGCONT)
    assert make_app(chroma_url=url, index_timeout_s=2.0).test_client().get("/readyz").status_code == 200


def test_the_chroma_token_is_sent_on_every_request(chroma_server, postgres_url, make_app):
    # An authenticating reverse proxy in front of `chroma run` (which checks no credentials itself): what a
    # deployment puts there. It forwards a request only with the right bearer token, else answers 401.
    seen: list[str | None] = []

    def bearer(path: str, headers) -> int | None:
        seen.append(headers.get("Authorization"))
        return None if headers.get("Authorization") == "Bearer s3cret-index-token" else 401
    proxy = Relay(chroma_server[0], bearer, strip=("authorization",))
    try:
        with pytest.raises(StoreUnavailable):  # no token: the proxy refuses, and the start says why
            make_app(chroma_url=proxy.url, database_url=postgres_url)
        client = make_app(chroma_url=proxy.url, chroma_token="s3cret-index-token",
                          database_url=postgres_url).test_client()
        register_rose_and_find_her(client, client)
        assert seen.count("Bearer s3cret-index-token") >= 3
    finally:
        proxy.close()


def test_a_search_meeting_a_new_generations_first_write_waits_instead_of_failing(chroma_server, settings,
                                                                                 tmp_path):
    """Chroma answers a search that meets a collection's first write, before its HNSW segment is on disk,
    with "Nothing found on disk" (raw client, same load: 31 errors in 40 trials here). The index retries such a
    read within its deadline: no search answers 503 for it."""
    import threading

    import numpy as np

    from service.compose import open_store
    from service.config import replace

    url, _ = chroma_server
    store = open_store(replace(settings, data_dir=tmp_path / "data", chroma_url=url), "race-model", 128)
    failures: list[str] = []
    try:
        index = store.index
        for trial in range(20):
            name = f"index-race-model-g{100 + trial}"
            index.create(name)
            vector = np.random.default_rng(trial).normal(size=128).astype(np.float32)

            def search(name: str, vector: np.ndarray) -> None:
                for _ in range(10):
                    try:
                        index.query(name, vector, 3)
                    except StoreUnavailable as exc:
                        failures.append(repr(exc.__cause__))

            threads = [threading.Thread(target=search, args=(name, vector)) for _ in range(3)]
            threads.append(threading.Thread(target=index.upsert, args=(name, [("a", vector)])))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert index.query(name, vector, 1)[0][0] == "a"
    finally:
        store.close()
    assert failures == []
