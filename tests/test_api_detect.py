import base64

from .conftest import CLIENT, fixture_bytes
from .helpers import assert_error


def post_image(client, rel, field="image", url="/v1/detect"):
    return client.post(url, data={field: (__import__("io").BytesIO(fixture_bytes(rel)), rel.split("/")[-1])},
                       content_type="multipart/form-data", headers=CLIENT)


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"model": True, "store": True}


def test_detect_group_photo_multipart(client):
    r = post_image(client, "multi_face/face_recognition__two_people.jpg")
    assert r.status_code == 200
    body = r.get_json()
    assert body["image"] == {"width": 1126, "height": 661}
    assert len(body["faces"]) == 2
    face = body["faces"][0]
    assert set(face) == {"box", "landmarks", "probability"}
    assert set(face["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    second = body["faces"][1]["box"]
    assert face["box"]["width"] * face["box"]["height"] >= second["width"] * second["height"]
    assert r.headers["X-Request-ID"]


def test_detect_json_base64_and_no_face(client):
    data = base64.b64encode(fixture_bytes("no_face/dlib__dog.jpg")).decode()
    r = client.post("/v1/detect", headers=CLIENT, json={"image": data})
    assert r.status_code == 200 and r.get_json()["faces"] == []
    data_url = "data:image/jpeg;base64," + base64.b64encode(fixture_bytes("people/Joe_Biden/0002.jpg")).decode()
    assert len(client.post("/v1/detect", headers=CLIENT, json={"image": data_url}).get_json()["faces"]) == 1


def test_detect_errors(client):
    assert_error(post_image(client, "invalid/compreface__truncated.jpg"), 400, "invalid_image")
    assert_error(post_image(client, "invalid/compreface__corrupted.png"), 400, "invalid_image")
    assert_error(post_image(client, "invalid/compreface__empty.png"), 400, "invalid_image")
    assert_error(client.post("/v1/detect", headers=CLIENT, json={"image": "@@not base64@@"}), 400, "invalid_image")
    err = assert_error(client.post("/v1/detect", headers=CLIENT, json={}), 400, "validation_error")
    assert err["details"]["field"] == "image"
    assert_error(client.post("/v1/detect", headers=CLIENT, data=b"\xff\xd8", content_type="image/jpeg"), 415,
                 "unsupported_media_type")
    assert_error(client.post("/v1/detect", headers=CLIENT, data="{not json", content_type="application/json"), 400,
                 "validation_error")
    assert_error(client.get("/v1/detect"), 405, "method_not_allowed")
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_request_body_over_the_limit_is_413(make_app):
    app = make_app(max_request_bytes=10_000)
    r = app.test_client().post("/v1/detect", data={"image": (__import__("io").BytesIO(
        fixture_bytes("people/Joe_Biden/0001.jpg")), "a.jpg")}, content_type="multipart/form-data",
        headers=CLIENT)
    assert_error(r, 413, "payload_too_large")
