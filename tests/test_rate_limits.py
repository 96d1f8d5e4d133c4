"""Rate limits answer 429 rate_limited with Retry-After: per key, per IP without a valid key (key guessing),
and per target person on verify whichever key asks (hill-climbing one identity)."""
from .conftest import ADMIN, CLIENT, upload
from .helpers import assert_error


def test_wrong_keys_are_throttled_per_ip_and_valid_keys_are_not(make_app):
    client = make_app(rate_limit_per_ip="5/minute", rate_limit_per_key="1000/minute").test_client()
    for i in range(5):
        assert_error(client.get("/v1/persons", headers={"X-API-Key": f"guess-{i:032d}"}), 401, "unauthorized")
    err = client.get("/v1/persons", headers={"X-API-Key": "guess-again-0123456789"})
    assert_error(err, 429, "rate_limited")
    assert int(err.headers["Retry-After"]) > 0
    assert client.get("/v1/persons", headers=ADMIN).status_code == 200  # a real key is counted apart
    assert client.get("/readyz").status_code == 200  # health checks are never limited
    assert client.get("/admin").status_code == 200  # nor the console's page (its API calls carry a key)


def test_per_key_limit(make_app):
    client = make_app(rate_limit_per_key="3/minute").test_client()
    for _ in range(3):
        assert client.get("/v1/persons", headers=ADMIN).status_code == 200
    assert_error(client.get("/v1/persons", headers=ADMIN), 429, "rate_limited")
    assert client.post("/v1/detect", headers=CLIENT, data=upload("people/Kit_Harington/0001.jpg"),
                       content_type="multipart/form-data").status_code == 200  # another key, its own count


def test_verify_is_limited_per_target_person_across_keys(make_app):
    app = make_app(rate_limit_verify_per_person="2/minute")
    client = app.test_client()
    r = client.post("/v1/persons", data=upload("people/Rose_Leslie/0001.jpg", name="Rose", person_id="rose"),
                    content_type="multipart/form-data", headers=CLIENT)
    assert r.status_code == 201
    probe = "people/Joe_Biden/0001.jpg"
    for key in (CLIENT, ADMIN):  # two keys, one target
        assert client.post("/v1/verify", data=upload(probe, person_id="rose"), content_type="multipart/form-data",
                           headers=key).status_code == 200
    err = client.post("/v1/verify", data=upload(probe, person_id="rose"), content_type="multipart/form-data",
                      headers=CLIENT)
    assert_error(err, 429, "rate_limited")
    assert "Retry-After" in err.headers
    # another person is not affected
    assert_error(client.post("/v1/verify", data=upload(probe, person_id="nobody"),
                             content_type="multipart/form-data", headers=CLIENT), 404, "person_not_found")


def test_limits_can_be_switched_off(make_app):
    client = make_app(rate_limits=False, rate_limit_per_ip="1/minute").test_client()
    for _ in range(3):
        assert_error(client.get("/v1/persons"), 401, "unauthorized")
