"""Every identifier and text field, with anything Unicode lets a client send (NUL, lone surrogates, controls,
invisible and case-folding characters, decomposed accents, 8 MB strings), through the real app on SQLite and
on a real PostgreSQL: a documented 4xx or a success, never a 5xx; and what is accepted is stored in one
canonical form that every later use (search, lookup, the per-person limiter) sees the same."""
from __future__ import annotations

import base64
import io
import json
import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ADMIN, CLIENT, fixture_bytes
from .helpers import assert_error

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)

KIT = fixture_bytes("people/Kit_Harington/0001.jpg")
NOT_AN_IMAGE = base64.b64encode(b"\x00" * 12).decode()
SPECIAL = ["\x00", "\ud800", "\udfff", "\u200b", "\u200d", "\ufeff", " ", "\t", "\n", "\x7f", "\x85", "İ", "ß",
           "e\u0301", "é", "\u3164", "\u2800", "/", "?", "#", "%", ".", "..", "a", "kit"]
TEXT = st.one_of(
    st.lists(st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL)), max_size=40)
    .map("".join),
    st.tuples(st.sampled_from(SPECIAL), st.integers(1, 2000)).map(lambda t: t[0] * t[1]))
JSON = {"Content-Type": "application/json"}


def body(**values: object) -> bytes:
    """JSON as a client writes it: json.dumps escapes a lone surrogate as \\ud800, which JSON allows."""
    return json.dumps(values).encode()


def path(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# (field, request): each sends ``text`` in one field of one endpoint, the rest of the request valid.
REQUESTS = {
    "register name": lambda c, t: c.post("/v1/persons", headers={**ADMIN, **JSON},
                                         data=body(name=t, image=NOT_AN_IMAGE)),
    "register person_id": lambda c, t: c.post("/v1/persons", headers={**ADMIN, **JSON},
                                              data=body(name="n", person_id=t, image=NOT_AN_IMAGE)),
    "register metadata": lambda c, t: c.post("/v1/persons", headers={**ADMIN, **JSON},
                                             data=body(name="n", metadata={t: [t]}, image=NOT_AN_IMAGE)),
    "patch name": lambda c, t: c.patch("/v1/persons/kit", headers={**ADMIN, **JSON}, data=body(name=t)),
    "patch metadata": lambda c, t: c.patch("/v1/persons/kit", headers={**ADMIN, **JSON},
                                           data=body(metadata={t: {"v": t}})),
    "search": lambda c, t: c.get(f"/v1/persons?q={path(t)}", headers=ADMIN),
    "cursor": lambda c, t: c.get("/v1/persons?cursor=" + base64.urlsafe_b64encode(
        json.dumps(["k", t, t]).encode()).decode().rstrip("="), headers=ADMIN),
    "person path": lambda c, t: c.get(f"/v1/persons/{path(t)}", headers=ADMIN),
    "face path": lambda c, t: c.get(f"/v1/persons/kit/faces/{path(t)}/crop", headers=ADMIN),
    "add faces path": lambda c, t: c.post(f"/v1/persons/{path(t)}/faces", headers={**ADMIN, **JSON},
                                          data=body(image=NOT_AN_IMAGE)),
    "verify person_id": lambda c, t: c.post("/v1/verify", headers={**CLIENT, **JSON},
                                            data=body(person_id=t, image=NOT_AN_IMAGE)),
    "key name": lambda c, t: c.post("/v1/keys", headers={**ADMIN, **JSON}, data=body(name=t, scopes=["verify"])),
    "key path": lambda c, t: c.delete(f"/v1/keys/{path(t)}", headers=ADMIN),
    "rotate path": lambda c, t: c.post(f"/v1/keys/{path(t)}/rotate", headers=ADMIN),
    "audit person_id": lambda c, t: c.get(f"/v1/audit?person_id={path(t)}", headers=ADMIN),
    "audit actor": lambda c, t: c.get(f"/v1/audit?actor={path(t)}", headers=ADMIN),
    "audit op": lambda c, t: c.get(f"/v1/audit?op={path(t)}", headers=ADMIN),
    "audit since": lambda c, t: c.get(f"/v1/audit?since={path(t)}", headers=ADMIN),
}
# 308: a %2F in a path is a slash to werkzeug's router, which merges "//" with a redirect.
ANSWERS = {200: None, 201: None, 308: None, 400: {"validation_error", "invalid_image"},
           404: {"person_not_found", "face_not_found", "key_not_found", "not_found"}, 405: {"method_not_allowed"},
           409: {"person_exists"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def text_app(request, make_app):
    """An app of its own, with one enrolled person (``kit``), on each kind of records database."""
    changes: dict[str, object] = {"rate_limits": False}
    if request.param == "postgresql":
        changes["database_url"] = request.getfixturevalue("postgres_url")
    app = make_app(**changes)
    client = app.test_client()
    r = client.post("/v1/persons", headers=ADMIN, content_type="multipart/form-data",
                    data={"name": "Kit", "person_id": "kit", "image": (io.BytesIO(KIT), "kit.jpg")})
    assert r.status_code == 201, r.get_json()
    return app


# Derandomised, as the OpenAPI suite: the same 400 draws every run, so a failure reproduces and CI does not
# flicker; the reported cases below run whatever hypothesis draws.
@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(REQUESTS)), text=TEXT)
def test_no_text_in_any_field_makes_a_5xx(text_app, field, text):
    client = text_app.test_client()
    r = REQUESTS[field](client, text)
    assert r.status_code in ANSWERS, (field, text, r.status_code, r.get_data()[:300])
    if r.status_code >= 400:
        assert r.get_json()["error"]["code"] in ANSWERS[r.status_code], (field, text, r.get_json())
    if field == "patch name" and r.status_code == 200:
        stored = r.get_json()["person"]["name"]
        assert stored == unicodedata.normalize("NFC", stored) == stored.strip()
        for spelling in (stored, unicodedata.normalize("NFD", stored)):  # any accepted name finds its person
            found = client.get(f"/v1/persons?q={path(spelling)}", headers=ADMIN)
            assert found.status_code == 200 and "kit" in [p["id"] for p in found.get_json()["items"]], spelling


# The cases the attack report found, each on every field and on both databases, whatever hypothesis draws.
REPORTED = ["\x00", "\ud800", "İ" * 200, "\u200b\u200c\ufeff", " kit ", "x" * 8_000_000]


def test_reported_texts_in_every_field_are_never_a_5xx(text_app):
    client = text_app.test_client()
    for field, send in REQUESTS.items():
        for text in REPORTED:
            r = send(client, text)
            assert r.status_code in ANSWERS and r.status_code < 500, (field, text[:20], r.status_code)


def test_names_are_one_canonical_form(client, empty_store):
    def register(name: str):
        return client.post("/v1/persons", headers=ADMIN, content_type="multipart/form-data",
                           data={"name": name, "image": (io.BytesIO(KIT), "kit.jpg")})
    for invisible in ("\u200b\u200b", "\u3164", " \u200d\ufeff "):  # zero-width only: names no one
        error = assert_error(register(invisible), 400, "validation_error")
        assert error["details"]["field"] == "name"
    assert_error(register("İ" * 200), 400, "validation_error")  # its search key would be 400 characters
    decomposed = "Rene\u0301e"
    r = register(decomposed)
    assert r.status_code == 201 and r.get_json()["person"]["name"] == "Renée"  # stored composed (NFC)
    for q in ("renée", "rene\u0301e", "RENÉE", "ne\u0301e"):
        found = client.get(f"/v1/persons?q={path(q)}", headers=ADMIN).get_json()["items"]
        assert [p["name"] for p in found] == ["Renée"], q


@pytest.mark.parametrize("records", ["sqlite", "postgresql"])
def test_the_per_person_verify_limit_counts_the_canonical_id(make_app, request, records):
    url = request.getfixturevalue("postgres_url") if records == "postgresql" else ""
    app = make_app(rate_limit_verify_per_person="3/minute", database_url=url)
    client = app.test_client()
    r = client.post("/v1/persons", headers=ADMIN, content_type="multipart/form-data",
                    data={"name": "Kit", "person_id": "kit", "image": (io.BytesIO(KIT), "kit.jpg")})
    assert r.status_code == 201
    statuses = [client.post("/v1/verify", headers={**CLIENT, **JSON},
                            data=body(person_id=spelling, image=base64.b64encode(KIT).decode())).status_code
                for spelling in ("kit", " kit", "kit ", "\tkit", "  kit  ")]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 400  # a tab is a control character
    assert statuses[4] == 429  # every spelling counted against kit
    # Ids that cannot be ids share one counter: 40 distinct 1 MB ids leave the limiter's memory as it was.
    storage = app.extensions["faceid.limiter"].storage
    before = len(storage.events)
    for i in range(40):
        r = client.post("/v1/verify", headers={**CLIENT, **JSON}, data=body(person_id=f"{i}" + "x" * 1_000_000,
                                                                         image=NOT_AN_IMAGE))
        assert r.status_code in (400, 429)
    assert len(storage.events) <= before + 1
    assert max(len(k) for k in storage.events) < 300
