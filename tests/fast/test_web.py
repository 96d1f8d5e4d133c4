"""The web layer and the rules behind it, on stub models and the memory store: every resource's happy path,
the decisions (match, unknown, duplicate, mismatch) and the documented errors, in milliseconds."""
from __future__ import annotations

import base64
import io

from service.web.openapi import spec, undeclared_routes

from ..conftest import ADMIN, CLIENT
from ..helpers import assert_error
from .stubs import photo


def form(*images: bytes, **fields: str) -> dict:
    return {**fields, "image": [(io.BytesIO(b), f"{i}.png") for i, b in enumerate(images)]}


def register(client, person_id: str, *images: bytes, headers=CLIENT):
    return client.post("/v1/persons", data=form(*images, name=person_id.title(), person_id=person_id),
                       content_type="multipart/form-data", headers=headers)


def test_register_verify_identify_and_erase(client):
    made = register(client, "ada", photo(1), photo(1, 1))
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["person"]["id"] == "ada" and body["person"]["face_count"] == 2 and len(body["faces"]) == 2
    verified = client.post("/v1/verify", data=form(photo(1, 2), person_id="ada"),
                           content_type="multipart/form-data", headers=ADMIN).get_json()
    assert verified["match"] is True and verified["similarity"] > verified["threshold"]
    other = client.post("/v1/verify", json={"person_id": "ada", "image": base64.b64encode(photo(2)).decode()},
                        headers=CLIENT).get_json()
    assert other == {"match": False, "person_id": "ada", "box": other["box"]}  # a client key: no score
    found = client.post("/v1/identify", data=form(photo(1, 3)), content_type="multipart/form-data",
                        headers=ADMIN).get_json()
    assert found["faces"][0]["match"]["person_id"] == "ada" and found["gallery_size"] == 1
    stranger = client.post("/v1/identify", data=form(photo(3)), content_type="multipart/form-data",
                           headers=CLIENT).get_json()
    assert stranger["faces"][0]["match"] is None
    assert client.delete("/v1/persons/ada", headers=ADMIN).get_json()["deleted"] == {"person_id": "ada", "faces": 2}
    assert_error(client.get("/v1/persons/ada", headers=ADMIN), 404, "person_not_found")


def test_the_rules_answer_with_their_codes(client):
    assert register(client, "bo", photo(4)).status_code == 201
    err = assert_error(register(client, "bo-again", photo(4, 1)), 409, "duplicate_face")
    assert "person_id" not in err["details"]  # a client key is not told who
    assert register(client, "bo-again", photo(4, 1), headers=ADMIN).get_json()["error"]["details"]["person_id"] == "bo"
    assert_error(register(client, "bo", photo(5)), 409, "person_exists")
    assert_error(register(client, "nobody", photo(6, faces=0)), 422, "no_face")
    assert_error(register(client, "pair", photo(6, faces=2)), 422, "multiple_faces")
    mismatch = client.post("/v1/persons/bo/faces", data=form(photo(7)), content_type="multipart/form-data",
                           headers=CLIENT)
    assert_error(mismatch, 422, "face_mismatch")
    face_id = client.get("/v1/persons/bo", headers=ADMIN).get_json()["faces"][0]["id"]
    assert_error(client.delete(f"/v1/persons/bo/faces/{face_id}", headers=ADMIN), 400, "validation_error")
    assert_error(client.post("/v1/verify", json={"person_id": "bo", "image": "@@"}, headers=CLIENT), 400,
                 "invalid_image")
    assert_error(client.post("/v1/verify", json={"person_id": "bo", "image": base64.b64encode(photo(4)).decode(),
                                                 "threshold": 0.1}, headers=CLIENT), 400, "validation_error")


def test_keys_and_scopes(client):
    assert_error(client.post("/v1/identify", data=form(photo(1)), content_type="multipart/form-data"), 401,
                 "unauthorized")
    assert_error(client.get("/v1/persons", headers=CLIENT), 403, "forbidden")
    assert_error(client.get("/v1/persons?limt=5", headers=ADMIN), 400, "validation_error")  # a misspelt one
    # a searched text is bounded in its lower-cased form too ("İ" lower-cases to two characters)
    assert_error(client.get("/v1/persons?q=" + "İ" * 200, headers=ADMIN), 400, "validation_error")
    made = client.post("/v1/keys", json={"name": "kiosk", "scopes": ["verify"]}, headers=ADMIN)
    assert made.status_code == 201
    kiosk = {"X-API-Key": made.get_json()["secret"]}
    assert_error(register(client, "cy", photo(8), headers=kiosk), 403, "forbidden")
    assert client.post("/v1/compare", data=form(photo(8), photo(8, 1)), content_type="multipart/form-data",
                       headers=kiosk).get_json()["match"] is True


def test_every_route_is_declared_and_the_description_is_generated(app, client):
    assert undeclared_routes(app) == []
    document = client.get("/openapi.json").get_json()
    assert document == spec(app) and document["openapi"] == "3.1.0"
    assert "/v1/persons/{person_id}/faces" in document["paths"]
