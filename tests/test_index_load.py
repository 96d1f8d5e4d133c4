"""A serving process reads the index into memory at its start (``compose.load_index``): Chroma would otherwise
read it at the first search, and a big index off a cold disk outlasts a search's deadline (1M people at M 48:
the first identify after a restart answered 503). An index that does not load in time must not stop the start:
verify needs none, and identify answers once the load is done, without a restart."""
import logging
import time

from chromadb.api.models.Collection import Collection

from service import create_app
from service.config import replace
from service.web import close_app

from .conftest import CLIENT, upload


def _start(settings, data_dir, caplog, **changes):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service.compose"):
        served = create_app(replace(settings, data_dir=data_dir, **changes))
    said = [r for r in caplog.records if r.name == "service.compose"]
    return served, said


def _identify(client, photo: str):
    return client.post("/v1/identify", data=upload(photo), content_type="multipart/form-data", headers=CLIENT)


def test_a_start_reads_the_index_and_one_too_slow_does_not_stop_it(tmp_path, settings, app, caplog, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(settings.models_dir)

    served, said = _start(settings, data_dir, caplog)
    try:
        assert said == []  # nobody enrolled: nothing to read
        r = served.test_client().post("/v1/persons", data=upload("people/Kit_Harington/0001.jpg", person_id="kit",
                                                                 name="Kit"),
                                      content_type="multipart/form-data", headers=CLIENT)
        assert r.status_code == 201, r.get_json()
    finally:
        close_app(served)

    served, said = _start(settings, data_dir, caplog)
    try:
        assert [r.getMessage() for r in said] == ["index loaded"] and said[0].seconds >= 0
        r = _identify(served.test_client(), "people/Kit_Harington/0003.jpg")
        assert r.status_code == 200 and r.get_json()["faces"][0]["match"]["person_id"] == "kit", r.get_json()
    finally:
        close_app(served)

    # a load that cannot finish within its deadline (a big index off a cold disk; here the process's first index
    # query, the load, held for 3 s): the start goes on and says so. A deadline of a microsecond was not enough:
    # a query of one person can finish before the waiting thread gets the GIL back.
    real_query, slowed = Collection.query, []

    def first_slow(self, *args, **kwargs):
        if not slowed:
            slowed.append(True)
            time.sleep(3)
        return real_query(self, *args, **kwargs)
    monkeypatch.setattr(Collection, "query", first_slow)
    served, said = _start(settings, data_dir, caplog, index_load_timeout_s=1.0)
    try:
        assert [(r.levelno, r.getMessage()) for r in said] == [
            (logging.WARNING, "index not loaded at start: searches answer 503 until it is")]
        client = served.test_client()
        r = client.post("/v1/verify", data=upload("people/Kit_Harington/0003.jpg", person_id="kit"),
                        content_type="multipart/form-data", headers=CLIENT)
        assert r.status_code == 200 and r.get_json()["match"] is True
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 30
        while (r := _identify(client, "people/Kit_Harington/0003.jpg")).status_code != 200:
            assert r.status_code == 503 and r.get_json()["error"]["code"] == "store_unavailable", r.get_json()
            assert time.monotonic() < deadline, "identify never recovered after a slow index load"
            time.sleep(0.5)
        assert r.get_json()["faces"][0]["match"]["person_id"] == "kit"
    finally:
        close_app(served)
