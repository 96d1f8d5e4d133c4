"""Register, add faces, list, get, edit, delete: every endpoint and every error it can give."""
import base64
import hashlib
import json

from .conftest import ADMIN, CLIENT, fixture_bytes, upload
from .helpers import assert_error

OBAMA = ["people/Barack_Obama/0001.jpg", "people/Barack_Obama/0002.jpg"]


def register(client, *rels, **fields):
    return client.post("/v1/persons", data=upload(*rels, **fields), content_type="multipart/form-data",
                       headers=CLIENT)


def test_register_multipart_returns_the_person_and_faces(client, empty_store):
    r = register(client, *OBAMA, name="Barack Obama", person_id="obama",
                 metadata=json.dumps({"employee": 44}))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    person = body["person"]
    assert person["id"] == "obama" and person["name"] == "Barack Obama"
    assert person["metadata"] == {"employee": 44} and person["face_count"] == 2
    assert person["created_at"] and person["updated_at"]
    assert len(body["faces"]) == 2
    face = body["faces"][0]
    assert set(face["box"]) == {"x", "y", "width", "height"}
    assert {"probability", "size", "blur", "yaw", "pitch", "roll"} <= set(face["quality"])
    # the stored crop is served to admins
    crop = client.get(face["crop_url"], headers=ADMIN)
    assert crop.status_code == 200 and crop.mimetype == "image/jpeg" and crop.data[:2] == b"\xff\xd8"


def test_register_json_base64_generates_an_id(client, empty_store):
    images = [base64.b64encode(fixture_bytes("people/Joe_Biden/0001.jpg")).decode()]
    r = client.post("/v1/persons", json={"name": "Joe Biden", "images": images}, headers=CLIENT)
    assert r.status_code == 201, r.get_json()
    assert len(r.get_json()["person"]["id"]) == 32


def test_register_is_all_or_nothing(client, empty_store):
    r = register(client, "people/Kit_Harington/0001.jpg", "no_face/dlib__dog.jpg", name="Kit", person_id="kit")
    err = assert_error(r, 422, "no_face")
    assert err["details"]["image_index"] == 1
    assert client.get("/v1/persons/kit", headers=ADMIN).status_code == 404
    assert empty_store.face_count() == 0


def test_register_errors(client, empty_store):
    assert register(client, OBAMA[0], name="Barack Obama", person_id="obama").status_code == 201
    assert_error(register(client, "people/Kit_Harington/0001.jpg", name="Kit", person_id="obama"), 409,
                 "person_exists")
    err = assert_error(register(client, OBAMA[1], name="Someone Else"), 409, "duplicate_face")
    assert err["details"] == {"image_index": 0}  # a client key is not told who (least_revealing)
    err = assert_error(register(client, "multi_face/face_recognition__two_people.jpg", name="Two"), 422,
                       "multiple_faces")
    assert err["details"]["faces"] == 2
    assert_error(register(client, "invalid/compreface__truncated.jpg", name="Broken"), 400, "invalid_image")
    assert_error(register(client, "people/Kit_Harington/0001.jpg"), 400, "validation_error")  # no name
    err = assert_error(register(client, "people/Kit_Harington/0001.jpg", name="Kit", metadata="[1, 2]"), 400,
                       "validation_error")
    assert err["details"]["field"] == "metadata"
    err = assert_error(register(client, "people/Kit_Harington/0001.jpg", name="Kit",
                                metadata=json.dumps({"x": "y" * 5000})), 400, "validation_error")
    assert err["details"]["field"] == "metadata"
    err = assert_error(register(client, "people/Kit_Harington/0001.jpg", name="Kit", person_id="bad id!"), 400,
                       "validation_error")
    assert err["details"]["field"] == "person_id"
    too_many = ["people/Kit_Harington/0001.jpg"] * 11
    assert_error(register(client, *too_many, name="Kit"), 400, "validation_error")
    assert empty_store.person_count() == 1


def _variant(rel: str, change) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    change(Image.open(io.BytesIO(fixture_bytes(rel))).convert("RGB")).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _register_bytes(client, data: bytes, name: str):
    import io
    return client.post("/v1/persons", data={"name": name, "image": (io.BytesIO(data), "x.jpg")},
                       content_type="multipart/form-data", headers=CLIENT)


def test_small_face_is_refused_naming_the_check(client, empty_store):
    # The same photo at thumbnail size: the face is about 28 px, below the 64 px enrollment minimum.
    small = _variant("people/Kit_Harington/0001.jpg", lambda im: im.resize((300, 150)))
    err = assert_error(_register_bytes(client, small, "Kit"), 422, "low_quality")
    failed = {f["check"]: f for f in err["details"]["failed"]}
    assert "face_size" in failed and failed["face_size"]["value"] < failed["face_size"]["limit"]
    assert empty_store.person_count() == 0


def test_tilted_head_is_refused_by_the_pose_check(client, empty_store):
    tilted = _variant("people/Rose_Leslie/0001.jpg", lambda im: im.rotate(50, expand=True, fillcolor=(128, 128, 128)))
    err = assert_error(_register_bytes(client, tilted, "Rose"), 422, "low_quality")
    assert "pose_roll" in {f["check"] for f in err["details"]["failed"]}


def test_blurred_face_is_refused_by_the_blur_check(client, empty_store):
    import io

    from PIL import Image, ImageFilter
    image = Image.open(io.BytesIO(fixture_bytes("people/Kit_Harington/0001.jpg"))).filter(
        ImageFilter.GaussianBlur(6))
    buf = io.BytesIO()
    image.save(buf, "JPEG")
    r = client.post("/v1/persons", data={"name": "Blurry", "image": (io.BytesIO(buf.getvalue()), "b.jpg")},
                    content_type="multipart/form-data", headers=CLIENT)
    err = assert_error(r, 422, "low_quality")
    assert "blur" in {f["check"] for f in err["details"]["failed"]}


def test_add_and_delete_faces(client, empty_store):
    assert register(client, OBAMA[0], name="Barack Obama", person_id="obama").status_code == 201
    r = client.post("/v1/persons/obama/faces", data=upload(OBAMA[1]), content_type="multipart/form-data",
                    headers=CLIENT)
    assert r.status_code == 201 and r.get_json()["person"]["face_count"] == 2
    face_id = r.get_json()["faces"][0]["id"]
    assert r.get_json()["faces"][0]["source_sha256"] == hashlib.sha256(fixture_bytes(OBAMA[1])).hexdigest()
    # the same photo again (a re-run import, or a retry whose answer was lost) adds nothing
    err = assert_error(client.post("/v1/persons/obama/faces", data=upload(OBAMA[1]),
                                   content_type="multipart/form-data", headers=CLIENT), 409, "duplicate_photo")
    assert err["details"] == {"image_index": 0, "person_id": "obama", "face_id": face_id}
    assert_error(client.post("/v1/persons", data=upload(OBAMA[0], OBAMA[0], name="Twice"),
                             content_type="multipart/form-data", headers=CLIENT), 409, "duplicate_photo")
    assert_error(client.post("/v1/persons/nobody/faces", data=upload(OBAMA[1]),
                             content_type="multipart/form-data", headers=CLIENT), 404, "person_not_found")
    assert_error(client.post("/v1/persons/obama/faces", data=upload("no_face/dlib__giraffe.jpg"),
                             content_type="multipart/form-data", headers=CLIENT), 422, "no_face")
    r = client.delete(f"/v1/persons/obama/faces/{face_id}", headers=ADMIN)
    assert r.status_code == 200 and r.get_json()["person"]["face_count"] == 1
    assert_error(client.delete(f"/v1/persons/obama/faces/{face_id}", headers=ADMIN), 404, "face_not_found")
    (last,) = client.get("/v1/persons/obama", headers=ADMIN).get_json()["faces"]
    err = assert_error(client.delete(f"/v1/persons/obama/faces/{last['id']}", headers=ADMIN), 400,
                       "validation_error")  # a person keeps at least one face: delete the person instead
    assert err["details"]["field"] == "face_id"
    assert_error(client.get(f"/v1/persons/obama/faces/{face_id}/crop", headers=ADMIN), 404, "face_not_found")


def test_admin_list_get_patch_delete(client, empty_store):
    for rel, name, pid in [(OBAMA[0], "Barack Obama", "obama"), ("people/Joe_Biden/0001.jpg", "Joe Biden", "biden"),
                           ("people/Rose_Leslie/0001.jpg", "Rose Leslie", "rose")]:
        assert register(client, rel, name=name, person_id=pid).status_code == 201
    page = client.get("/v1/persons?limit=2", headers=ADMIN).get_json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"/v1/persons?limit=2&cursor={page['next_cursor']}", headers=ADMIN).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {p["id"] for p in page["items"] + rest["items"]} == {"obama", "biden", "rose"}
    found = client.get("/v1/persons?q=BIDEN", headers=ADMIN).get_json()
    assert found["total"] == 1 and found["items"][0]["id"] == "biden"
    one = client.get("/v1/persons/rose", headers=ADMIN).get_json()
    assert one["person"]["face_count"] == 1 and len(one["faces"]) == 1

    r = client.patch("/v1/persons/rose", json={"name": "Rose L.", "metadata": {"team": "b"}}, headers=ADMIN)
    assert r.status_code == 200 and r.get_json()["person"]["name"] == "Rose L."
    assert r.get_json()["person"]["metadata"] == {"team": "b"}
    assert_error(client.patch("/v1/persons/rose", json={"face_count": 9}, headers=ADMIN), 400, "validation_error")
    assert_error(client.patch("/v1/persons/rose", json={}, headers=ADMIN), 400, "validation_error")
    assert_error(client.patch("/v1/persons/ghost", json={"name": "x"}, headers=ADMIN), 404, "person_not_found")

    r = client.delete("/v1/persons/rose", headers=ADMIN)
    assert r.status_code == 200 and r.get_json()["deleted"] == {"person_id": "rose", "faces": 1}
    assert_error(client.get("/v1/persons/rose", headers=ADMIN), 404, "person_not_found")
    assert_error(client.delete("/v1/persons/rose", headers=ADMIN), 404, "person_not_found")
    assert empty_store.faces_of("rose") == []  # every face, crop and embedding gone
    assert_error(client.get("/v1/persons?cursor=garbage!", headers=ADMIN), 400, "validation_error")
    forged = base64.urlsafe_b64encode(b'["k", 1, {"a": 2}]').decode()
    assert_error(client.get(f"/v1/persons?cursor={forged}", headers=ADMIN), 400, "validation_error")
    assert_error(client.get("/v1/persons?limit=1000", headers=ADMIN), 400, "validation_error")


def test_deleted_person_can_be_registered_again(client, empty_store):
    assert register(client, OBAMA[0], name="Barack Obama", person_id="obama").status_code == 201
    assert client.delete("/v1/persons/obama", headers=ADMIN).status_code == 200
    r = register(client, OBAMA[1], name="Barack Obama", person_id="obama")
    assert r.status_code == 201 and r.get_json()["person"]["face_count"] == 1


def test_a_client_key_cannot_graft_another_face_onto_an_identity(client, empty_store):
    """The takeover: someone else's photo added to obama with a client key would make them verify as obama."""
    assert register(client, OBAMA[0], name="Barack Obama", person_id="obama").status_code == 201
    biden = "people/Joe_Biden/0001.jpg"
    before = client.post("/v1/verify", data=upload(biden, person_id="obama"), content_type="multipart/form-data",
                         headers=ADMIN).get_json()
    err = assert_error(client.post("/v1/persons/obama/faces", data=upload(biden),
                                   content_type="multipart/form-data", headers=CLIENT), 422, "face_mismatch")
    assert err["details"] == {"image_index": 0, "person_id": "obama"}  # no score to hill-climb on
    assert empty_store.get_person("obama").face_count == 1
    after = client.post("/v1/verify", data=upload(biden, person_id="obama"), content_type="multipart/form-data",
                        headers=ADMIN).get_json()
    assert after["similarity"] == before["similarity"] and not after["match"]
    # the person's own new photo is still welcome
    r = client.post("/v1/persons/obama/faces", data=upload(OBAMA[1]), content_type="multipart/form-data",
                    headers=CLIENT)
    assert r.status_code == 201, r.get_json()
    # overriding is an admin's decision, made explicitly
    assert_error(client.post("/v1/persons/obama/faces", data=upload(biden, allow_mismatch="true"),
                             content_type="multipart/form-data", headers=CLIENT), 403, "forbidden")
    r = client.post("/v1/persons/obama/faces", data=upload(biden, allow_mismatch="true"),
                    content_type="multipart/form-data", headers=ADMIN)
    assert r.status_code == 201 and r.get_json()["person"]["face_count"] == 3
