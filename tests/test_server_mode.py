"""Scale-out mode: two service instances share one PostgreSQL records database and one `chroma run` index
server, and an index that goes away gives 503 store_unavailable for search (never a 500), while reads of the
records still answer."""
from .conftest import ADMIN, CLIENT, upload
from .test_api_detect import assert_error


def test_two_instances_share_one_chroma_server(chroma_server, postgres_url, make_app):
    url, _ = chroma_server
    first = make_app(chroma_url=url, database_url=postgres_url).test_client()
    second = make_app(chroma_url=url, database_url=postgres_url).test_client()
    r = first.post("/v1/persons", data=upload("people/Rose_Leslie/0001.jpg", name="Rose Leslie", person_id="rose"),
                   content_type="multipart/form-data", headers=CLIENT)
    assert r.status_code == 201, r.get_json()
    found = second.post("/v1/identify", data=upload("people/Rose_Leslie/0002.jpg"),
                        content_type="multipart/form-data", headers=CLIENT).get_json()
    assert found["faces"][0]["match"]["person_id"] == "rose"
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
