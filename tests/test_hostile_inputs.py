"""Hostile and broken requests, each answered with its documented 4xx and a stable code — never a 500,
never a hang — and the service still healthy afterwards."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from werkzeug.exceptions import HTTPException

from service import create_app
from service.config import replace
from service.web import close_app

from .conftest import ADMIN, CLIENT, fixture_bytes
from .helpers import assert_error
from .hostile import face_grid, scan_bomb

KIT = fixture_bytes("people/Kit_Harington/0001.jpg")
SCAN_BOMB = scan_bomb(7000, 5000)  # ~30 s of CPU if it were decoded
CROWD = face_grid(8)  # 64 faces, more than max_faces_per_request (50)


def png16(size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), 1234, np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def nested(depth: int) -> bytes:
    return b'{"name": "x", "metadata": ' + b"[" * depth + b"]" * depth + b"}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


JSON = {"Content-Type": "application/json"}
# (what, method, path, headers, body, status, code)
CASES = [
    ("deep JSON body", "post", "/v1/persons", JSON, nested(100_000), 400, "validation_error"),
    ("JSON nested past the limit", "post", "/v1/persons", JSON, nested(40), 400, "validation_error"),
    ("NaN in metadata", "post", "/v1/persons", JSON,
     b'{"name": "x", "metadata": {"a": NaN}, "image": "' + b64(KIT).encode() + b'"}', 400, "validation_error"),
    ("Infinity in a JSON body", "post", "/v1/verify", JSON, b'{"person_id": "a", "threshold": Infinity}', 400,
     "validation_error"),
    ("NaN metadata in multipart", "post", "/v1/persons", None,
     {"name": "x", "metadata": '{"a": NaN}', "image": (io.BytesIO(KIT), "k.jpg")}, 400, "validation_error"),
    ("NaN threshold in multipart", "post", "/v1/compare", None,
     {"threshold": "nan", "image": [(io.BytesIO(KIT), "a.jpg"), (io.BytesIO(KIT), "b.jpg")]}, 400,
     "validation_error"),
    ("infinite threshold", "post", "/v1/verify", JSON,
     json.dumps({"person_id": "a", "threshold": 1e999, "image": b64(KIT)}).replace("Infinity", "1e999").encode(),
     400, "validation_error"),
    ("JSON that is not an object", "post", "/v1/identify", JSON, b"[1, 2, 3]", 400, "validation_error"),
    ("invalid JSON", "post", "/v1/identify", JSON, b'{"image": ', 400, "validation_error"),
    ("invalid UTF-8 in JSON", "post", "/v1/identify", JSON, b'{"image": "\xff\xfe"}', 400, "validation_error"),
    ("images is not a list", "post", "/v1/persons", JSON, b'{"name": "x", "images": "abc"}', 400,
     "validation_error"),
    ("image is a number", "post", "/v1/detect", JSON, b'{"image": 12}', 400, "validation_error"),
    ("bad base64", "post", "/v1/detect", JSON, b'{"image": "***"}', 400, "invalid_image"),
    ("empty image", "post", "/v1/detect", JSON, b'{"image": ""}', 400, "invalid_image"),
    ("a PDF", "post", "/v1/detect", JSON, json.dumps({"image": b64(b"%PDF-1.4 not a face")}).encode(), 400,
     "invalid_image"),
    ("truncated JPEG", "post", "/v1/detect", JSON, json.dumps({"image": b64(KIT[:2000])}).encode(), 400,
     "invalid_image"),
    ("no content type", "post", "/v1/detect", {"Content-Type": ""}, b"abc", 415, "unsupported_media_type"),
    ("text/plain", "post", "/v1/detect", {"Content-Type": "text/plain"}, b"abc", 415, "unsupported_media_type"),
    ("no image at all", "post", "/v1/detect", JSON, b"{}", 400, "validation_error"),
    ("two images to detect", "post", "/v1/detect", JSON, json.dumps({"images": [b64(KIT)] * 2}).encode(), 400,
     "validation_error"),
    ("eleven images to register", "post", "/v1/persons", JSON,
     json.dumps({"name": "x", "images": [b64(KIT)] * 11}).encode(), 400, "validation_error"),
    ("three images to compare", "post", "/v1/compare", JSON, json.dumps({"images": [b64(KIT)] * 3}).encode(), 400,
     "validation_error"),
    ("no name", "post", "/v1/persons", JSON, json.dumps({"image": b64(KIT)}).encode(), 400, "validation_error"),
    ("a 300-character name", "post", "/v1/persons", JSON, json.dumps({"name": "n" * 300, "image": b64(KIT)}).encode(),
     400, "validation_error"),
    ("a person id with a slash", "post", "/v1/persons", JSON,
     json.dumps({"name": "x", "person_id": "a/b", "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("metadata that is a list", "post", "/v1/persons", JSON,
     json.dumps({"name": "x", "metadata": [1], "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("8 kB of metadata", "post", "/v1/persons", JSON,
     json.dumps({"name": "x", "metadata": {"a": "b" * 8000}, "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("top_k zero", "post", "/v1/identify", JSON, json.dumps({"top_k": 0, "image": b64(KIT)}).encode(), 400,
     "validation_error"),
    ("top_k huge", "post", "/v1/identify", JSON, json.dumps({"top_k": 10**12, "image": b64(KIT)}).encode(), 400,
     "validation_error"),
    ("all_faces not a boolean", "post", "/v1/identify", JSON,
     json.dumps({"all_faces": "perhaps", "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("a looser threshold", "post", "/v1/compare", JSON,
     json.dumps({"threshold": 0.01, "images": [b64(KIT)] * 2}).encode(), 400, "validation_error"),
    ("verify an unknown person", "post", "/v1/verify", JSON,
     json.dumps({"person_id": "nobody", "image": b64(KIT)}).encode(), 404, "person_not_found"),
    ("a progressive JPEG with 5,000 empty scans", "post", "/v1/identify", None,
     {"image": (io.BytesIO(SCAN_BOMB), "bomb.jpg")}, 413, "payload_too_large"),
    ("64 faces to identify", "post", "/v1/identify", None,
     {"all_faces": "true", "image": (io.BytesIO(CROWD), "crowd.jpg")}, 422, "too_many_faces"),
    ("a scan bomb to check for enrollment", "post", "/v1/quality", None,
     {"image": (io.BytesIO(SCAN_BOMB), "bomb.jpg")}, 413, "payload_too_large"),
    ("faces added to nobody, with a body too deep", "post", "/v1/persons/nobody/faces", JSON, nested(100_000), 400,
     "validation_error"),
    ("a face added as a text field", "post", "/v1/persons/nobody/faces", None, {"image": "not a file"}, 400,
     "validation_error"),
    ("64 faces to detect", "post", "/v1/detect", JSON, json.dumps({"image": b64(CROWD)}).encode(), 422,
     "too_many_faces"),
    ("a lone surrogate in a name", "post", "/v1/persons", JSON,
     b'{"name": "\\ud800", "image": "' + b64(KIT).encode() + b'"}', 400, "validation_error"),
    ("a lone surrogate in verify's person_id", "post", "/v1/verify", JSON,
     b'{"person_id": "a\\udfff", "image": "' + b64(KIT).encode() + b'"}', 400, "validation_error"),
    ("a lone surrogate in a new name", "patch", "/v1/persons/nobody", JSON, b'{"name": "\\ud800"}', 400,
     "validation_error"),
    ("a lone surrogate in a key name", "post", "/v1/keys", JSON, b'{"name": "\\ud800", "scopes": ["verify"]}', 400,
     "validation_error"),
    ("NUL in a person id in the path", "get", "/v1/persons/x%00", None, None, 404, "person_not_found"),
    ("NUL in a face id in the path", "delete", "/v1/persons/x/faces/f%00", None, None, 404, "face_not_found"),
    ("NUL in a key id in the path", "delete", "/v1/keys/key_%00", None, None, 404, "key_not_found"),
    ("NUL in a search", "get", "/v1/persons?q=%00", None, None, 400, "validation_error"),
    ("NUL in an audit filter", "get", "/v1/audit?person_id=a%00", None, None, 400, "validation_error"),
    ("NUL in an audit time", "get", "/v1/audit?since=2026%00", None, None, 400, "validation_error"),
    ("NUL in verify's person_id", "post", "/v1/verify", JSON,
     json.dumps({"person_id": "a\x00", "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("NUL in metadata", "post", "/v1/persons", JSON,
     json.dumps({"name": "x", "metadata": {"k": "v\x00"}, "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("a name of 200 İ (a 400-character search key)", "post", "/v1/persons", JSON,
     json.dumps({"name": "İ" * 200, "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("a name of zero-width spaces", "post", "/v1/persons", JSON,
     json.dumps({"name": "\u200b\u200b\u200b", "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("an 8 MB person id", "post", "/v1/verify", JSON,
     json.dumps({"person_id": "a" * 8_000_000, "image": b64(KIT)}).encode(), 400, "validation_error"),
    ("16-bit PNG past the decode budget", "post", "/v1/detect", JSON,
     json.dumps({"image": b64(png16(9000))}).encode(), 413, "payload_too_large"),
    ("a forged list cursor", "get", "/v1/persons?cursor=WyJrIiwgMV0", None, None, 400, "validation_error"),
    ("limit zero", "get", "/v1/persons?limit=0", None, None, 400, "validation_error"),
    ("limit not a number", "get", "/v1/persons?limit=ten", None, None, 400, "validation_error"),
    ("a 300-character search", "get", "/v1/persons?q=" + "a" * 300, None, None, 400, "validation_error"),
    ("patching an unknown field", "patch", "/v1/persons/nobody", JSON, b'{"face_count": 3}', 400,
     "validation_error"),
    ("an unknown endpoint", "get", "/v1/nothing-here", None, None, 404, "not_found"),
    ("a wrong method", "put", "/v1/persons", None, None, 405, "method_not_allowed"),
    ("an unknown face's crop", "get", "/v1/persons/nobody/faces/x/crop", None, None, 404, "person_not_found"),
    ("a key with 100,000 unknown scopes", "post", "/v1/keys", JSON,
     json.dumps({"name": "x", "scopes": ["root"] * 100_000}).encode(), 400, "validation_error"),
    ("a 10,000-character key name", "post", "/v1/keys", JSON,
     json.dumps({"name": "x" * 10_000, "scopes": ["verify"]}).encode(), 400, "validation_error"),
    ("scopes as a string", "post", "/v1/keys", JSON, b'{"name": "x", "scopes": "admin"}', 400, "validation_error"),
    ("a key lifetime as a string", "post", "/v1/keys", JSON,
     b'{"name": "x", "scopes": ["verify"], "expires_in_s": "forever"}', 400, "validation_error"),
    ("a key lifetime of a century", "post", "/v1/keys", JSON,
     b'{"name": "x", "scopes": ["verify"], "expires_in_s": 3153600000}', 400, "validation_error"),
    ("revoke a key that does not exist", "delete", "/v1/keys/key_000000000000", None, None, 404, "key_not_found"),
    ("a negative grace", "delete", "/v1/keys/key_000000000000?grace_s=-5", None, None, 400, "validation_error"),
    ("rotate with a body that is not JSON", "post", "/v1/keys/key_000000000000/rotate", JSON, b"nope", 400,
     "validation_error"),
    ("an audit cursor that is not a number", "get", "/v1/audit?cursor=abc", None, None, 400, "validation_error"),
    ("an audit page of a million", "get", "/v1/audit?limit=1000000", None, None, 400, "validation_error"),
    ("an import report done past its total", "post", "/v1/imports/run1", JSON,
     b'{"state": "running", "total": 3, "done": 5}', 400, "validation_error"),
    ("an import report with a NaN rate", "post", "/v1/imports/run1", JSON,
     b'{"state": "running", "total": 3, "done": 1, "photos_per_s": NaN}', 400, "validation_error"),
    ("an import state nobody knows", "post", "/v1/imports/run1", JSON,
     b'{"state": "hacked", "total": 3, "done": 1}', 400, "validation_error"),
    ("NUL in an import run id", "post", "/v1/imports/run%00", JSON,
     b'{"state": "running", "total": 3, "done": 1}', 400, "validation_error"),
    ("an import run id of 100 characters", "post", "/v1/imports/" + "r" * 100, JSON,
     b'{"state": "running", "total": 3, "done": 1}', 400, "validation_error"),
    ("a billion billion photos to import", "post", "/v1/imports/run1", JSON,
     b'{"state": "running", "total": 1000000000000000000, "done": 1}', 400, "validation_error"),
    ("an imports page of a million", "get", "/v1/imports?limit=1000000", None, None, 400, "validation_error"),
]


@pytest.fixture(scope="module")
def postgresql_app(settings, postgres_server, tmp_path_factory):
    """The app on a real PostgreSQL records database (NUL in text was a 500 there only)."""
    data_dir = tmp_path_factory.mktemp("hostile-pg")
    (data_dir / "models").symlink_to(settings.models_dir)
    app = create_app(replace(settings, data_dir=data_dir, database_url=postgres_server()))
    yield app
    close_app(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_client(request):
    """A test client of the app on each kind of records database, its gallery empty."""
    if request.param == "sqlite":
        request.getfixturevalue("empty_store")
        return request.getfixturevalue("client")
    return request.getfixturevalue("postgresql_app").test_client()


@pytest.mark.parametrize("what,method,path,headers,body,status,code", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_gets_its_documented_4xx(any_client, what, method, path, headers, body, status, code):
    client = any_client
    kwargs = {"headers": {**ADMIN, **(headers or {})}}
    if isinstance(body, dict):  # each run its own file objects: a read one is empty
        kwargs.update(data=fresh(body), content_type="multipart/form-data")
    elif body is not None:
        kwargs["data"] = body
    response = getattr(client, method)(path, **kwargs)
    assert_error(response, status, code)
    assert client.get("/readyz").status_code == 200


def fresh(form: dict) -> dict:
    def renew(value):
        if isinstance(value, list):
            return [renew(v) for v in value]
        if isinstance(value, tuple) and isinstance(value[0], io.BytesIO):
            return (io.BytesIO(value[0].getvalue()), *value[1:])
        return value
    return {k: renew(v) for k, v in form.items()}


def test_auth_failures(client):
    assert_error(client.post("/v1/detect", headers=JSON, data=b"{}"), 401, "unauthorized")
    assert_error(client.post("/v1/detect", headers={**JSON, "X-API-Key": "x" * 40}, data=b"{}"), 401,
                 "unauthorized")
    assert_error(client.get("/v1/persons", headers=CLIENT), 403, "forbidden")


def test_the_hostile_table_attacks_every_endpoint_that_takes_input(app):
    """A new endpoint with a body or a query cannot go unattacked: the table reaches each one."""
    adapter = app.url_map.bind("localhost")
    attacked = set()
    for _, method, path, *_ in CASES:
        try:
            attacked.add(adapter.match(path.split("?")[0], method=method.upper())[0])
        except HTTPException:  # a case aimed at a route that does not exist (404/405 by design)
            pass
    takes_input = {rule.endpoint for rule in app.url_map.iter_rules()
                   if rule.rule.startswith("/v1/") and rule.methods and rule.methods & {"POST", "PATCH"}}
    takes_input |= {"persons.list_persons", "audit.list_events"}  # the queries
    assert takes_input - attacked == set(), takes_input - attacked


def test_405_says_what_is_allowed_and_every_answer_has_security_headers(client):
    r = client.put("/v1/persons", headers=ADMIN)
    assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    for response in (r, client.get("/v1/persons", headers=ADMIN), client.get("/healthz"), client.get("/docs")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert client.get("/v1/persons", headers=ADMIN).headers["Cache-Control"] == "no-store"


def test_mime_base64_with_line_breaks_is_an_image(client):
    """What `base64` prints by default (76-character lines, RFC 2045), CRLF or LF: line breaks are layout."""
    for text in (base64.encodebytes(KIT).decode(), base64.encodebytes(KIT).decode().replace("\n", "\r\n")):
        assert "\n" in text
        r = client.post("/v1/detect", headers={**CLIENT, **JSON}, data=json.dumps({"image": text}))
        assert r.status_code == 200 and len(r.get_json()["faces"]) >= 1
    assert_error(client.post("/v1/detect", headers={**CLIENT, **JSON}, data=json.dumps({"image": "ab\n*cd"})), 400,
                 "invalid_image")
