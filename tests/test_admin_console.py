"""The admin console (issue 13): its page and the two endpoints it adds (``GET /v1/status``, ``POST
/v1/quality``) through Flask's client, then the whole console in a real headless Chromium (Debian's
``chromium``, driven by Playwright) against a real gunicorn: sign in (a wrong key and a client key refused),
enroll by upload (a photo without a face refused next to that photo), find by search, verify, identify, rename,
erase after typing the name, and the erased person's thumbnail URL answers 404.

Screenshots of every page go to ``$FACEID_TEST_ARTIFACTS/admin-console`` (default ``tests/artifacts/``,
git-ignored)."""
from __future__ import annotations

import io
import os
import re
import signal
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from service import __version__
from service.web.admin import CONSOLE_CSP

from .conftest import ADMIN, CLIENT, fixture_bytes, fixture_path
from .helpers import ADMIN as E2E_ADMIN
from .helpers import CLIENT as E2E_CLIENT
from .helpers import start_gunicorn, wait_js

pytestmark = pytest.mark.long  # 20 s or more: scheduled first (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "service" / "web" / "static" / "admin"
ARTIFACTS = Path(os.environ.get("FACEID_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts") / "admin-console"


def post_image(client, rel, url="/v1/quality", headers=CLIENT):
    return client.post(url, data={"image": (io.BytesIO(fixture_bytes(rel)), rel.split("/")[-1])},
                       content_type="multipart/form-data", headers=headers)


# --- the page and its endpoints, through Flask's client ----------------------------------------------------

def test_console_page_is_served_with_a_strict_csp(client):
    r = client.get("/admin")
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert csp == CONSOLE_CSP
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "img-src 'self' blob: data:" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/static/index.html").headers["Content-Security-Policy"] == CONSOLE_CSP
    for asset, mimetype in (("admin.js", "text/javascript"), ("admin.css", "text/css")):
        r = client.get(f"/admin/static/{asset}")
        assert r.status_code == 200 and r.mimetype == mimetype
        assert r.headers["Cache-Control"] == "no-cache"
    assert client.get("/admin/static/../admin.py").status_code == 404
    assert client.get("/docs").headers["Content-Security-Policy"] != CONSOLE_CSP  # the docs page keeps its own


def test_console_source_keeps_its_security_rules():
    """No inline script or handler in the page (the CSP would block it anyway), no third-party URL (offline),
    and the script never parses data as HTML."""
    class Scan(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.problems: list[str] = []

        def handle_starttag(self, tag, attrs):
            named = dict(attrs)
            if tag == "script" and not named.get("src"):
                self.problems.append("inline <script>")
            self.problems += [f"{tag} {k}=" for k in named if k.startswith("on") or k == "style"]
            for k in ("src", "href"):
                if (named.get(k) or "").startswith(("http:", "https:", "//")):
                    self.problems.append(f"external {named[k]}")
    html = (STATIC / "index.html").read_text()
    scan = Scan()
    scan.feed(html)
    assert scan.problems == []
    script = (STATIC / "admin.js").read_text()
    assert not re.search(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval)\b", script)
    assert not re.search(r"\bnew Function\b", script)
    assert "https://" not in script and "http://" not in script
    assert "localStorage" not in script and "document.cookie" not in script  # the key: this tab only


def test_status_needs_an_admin_key(client, recognizer):
    assert client.get("/v1/status").status_code == 401
    assert client.get("/v1/status", headers=CLIENT).status_code == 403
    r = client.get("/v1/status", headers=ADMIN)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert body["version"] == __version__ and body["model"] == recognizer.model_id and body["ready"] is True
    assert body["gallery_size"] == recognizer.store.person_count()
    state = recognizer.index_state()
    assert body["store"] == {"records": "sqlite", "index": "embedded", "index_generation": state.generation,
                             "index_lag": 0, "index_centred": state.centred}
    assert state.generation >= 1
    assert body["thresholds"]["verify"] == round(recognizer.verify_threshold, 4)
    assert body["thresholds"]["identify"] >= body["thresholds"]["verify"]
    decision = recognizer.open_set_decision()  # what identify promises at this gallery size
    assert body["thresholds"]["identify"] == round(decision.least_similarity, 4)
    assert body["identify_rule"] == {"name": decision.rule.name, "beta": decision.rule.beta,
                                     "score_threshold": round(decision.threshold, 4), "target_fpir": 0.01,
                                     "score_threshold_by_photos": {str(k): round(t, 4) for k, t in
                                                                   decision.thresholds_by_photos().items()},
                                     "expected_fnir": decision.expected_fnir}
    assert decision.rule.name != "per_comparison_far" and 0 <= decision.expected_fnir < 0.5


def test_status_names_a_server_store(make_app, postgres_url, shared_chroma_server):
    app = make_app(database_url=postgres_url, chroma_url=shared_chroma_server)
    body = app.test_client().get("/v1/status", headers=ADMIN).get_json()
    assert {k: body["store"][k] for k in ("records", "index", "index_generation", "index_lag")} == {
        "records": "postgresql", "index": "server", "index_generation": 1, "index_lag": 0}
    assert body["gallery_size"] == 0


def test_version_is_pyprojects():
    assert __version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_quality_says_what_registration_would(client, pipeline):
    r = post_image(client, "people/Kit_Harington/0001.jpg")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["enrollable"] is True and body["problem"] is None and body["failed"] == []
    assert body["face_index"] == 0 and len(body["faces"]) >= 1 and body["image"]["width"] > 0
    assert set(body["quality"]) == {"probability", "size", "blur", "yaw", "pitch", "roll"}
    assert set(body["faces"][0]["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    # the same measures enrollment stores
    stored = pipeline.enrollment_face(fixture_bytes("people/Kit_Harington/0001.jpg"), 0)
    assert body["quality"] == stored.quality

    body = post_image(client, "multi_face/face_recognition__two_people.jpg").get_json()
    assert body["enrollable"] is False and body["face_index"] is None and len(body["faces"]) == 2
    assert body["problem"]["code"] == "multiple_faces" and body["problem"]["details"]["faces"] == 2

    body = post_image(client, "no_face/dlib__dog.jpg").get_json()
    assert body["enrollable"] is False and body["faces"] == [] and body["problem"]["code"] == "no_face"

    r = post_image(client, "invalid/compreface__truncated.jpg")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_image"
    assert post_image(client, "people/Kit_Harington/0001.jpg", headers={}).status_code == 401


def test_quality_lists_every_failed_check(make_app):
    strict = make_app(enroll_min_face_size=4000.0)
    body = post_image(strict.test_client(), "people/Kit_Harington/0001.jpg").get_json()
    assert body["enrollable"] is False and body["face_index"] == 0
    assert body["problem"]["code"] == "low_quality"
    assert [f["check"] for f in body["failed"]] == ["face_size"] == \
        [f["check"] for f in body["problem"]["details"]["failed"]]


# --- the console in a real browser against a real gunicorn ------------------------------------------------

@pytest.fixture(scope="module")
def console_server(tmp_path_factory, settings, app):  # the app prepares the models the server shares
    data_dir = tmp_path_factory.mktemp("admin-console")
    # duplicates allowed: the paging test registers one photo under many ids
    proc, base = start_gunicorn(data_dir, settings.models_dir, FACEID_DUPLICATE_POLICY="allow")
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def shot(page, name: str, full_page: bool = True) -> None:
    """A screenshot of the page as a test artifact (the README's picture is one of them, made smaller)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('toast').hidden = true")  # a passing notice, not the page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page, animations="disabled")


def test_console_end_to_end_in_chromium(console_server, page):
    from playwright.sync_api import expect

    base = console_server
    page.goto(f"{base}/admin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "01-sign-in")

    # a wrong key, then a client key, are refused in words; nothing is kept
    page.get_by_label("Admin API key").fill("not-a-valid-key-0123456789")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text(re.compile("not accepted"))
    page.get_by_label("Admin API key").fill(E2E_CLIENT["X-API-Key"])
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_have_text(re.compile("client key.*admin key"))
    assert page.evaluate("sessionStorage.length") == 0
    shot(page, "02-wrong-key")

    page.get_by_label("Admin API key").fill(E2E_ADMIN["X-API-Key"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    expect(page.locator("#people-message")).to_have_text("Nobody is enrolled yet.")
    expect(page.locator("#st-model")).not_to_be_empty()
    expect(page.locator("#st-records")).to_have_text("sqlite")
    assert E2E_ADMIN["X-API-Key"] not in page.url

    # enroll: a photo without a face is flagged before registering, and refused next to that photo
    page.get_by_role("link", name="Enroll a person").click()
    enroll = page.locator("#view-enroll")
    enroll.get_by_label("Name", exact=True).fill("Kit Harington")
    enroll.get_by_label("Person id").fill("kit")
    enroll.get_by_label("Metadata").fill('{"team": "cast"}')
    page.locator("#enroll-files").set_input_files([fixture_path("people/Kit_Harington/0001.jpg"),
                                                   fixture_path("no_face/dlib__dog.jpg")])
    photos = page.locator("#enroll-photos > li")
    expect(photos).to_have_count(2)
    expect(photos.nth(0).locator(".verdict")).to_have_text(re.compile("Ready to enroll"))
    expect(photos.nth(1).locator(".verdict")).to_have_text("No face was found in this photo.")
    expect(photos.nth(0).locator(".checks li.ok")).to_have_count(6)
    page.get_by_role("button", name="Register").click()
    expect(photos.nth(1).locator(".error")).to_have_text(
        "Registration refused this photo: No face was found in this photo.")
    expect(page.locator("#enroll-error")).to_have_text(re.compile(r"Photo 2 \(dlib__dog.jpg\) was refused"))
    expect(photos.nth(0).locator(".error")).to_have_text("")
    shot(page, "03-enroll-refused")
    photos.nth(1).get_by_role("button", name="Remove dlib__dog.jpg").click()
    page.locator("#enroll-files").set_input_files([fixture_path("people/Kit_Harington/0002.jpg")])
    expect(photos).to_have_count(2)
    expect(photos.nth(1).locator(".verdict")).to_have_text(re.compile("Ready to enroll"))
    shot(page, "04-enroll-checked")
    page.locator("#enroll-photos").scroll_into_view_if_needed()
    shot(page, "04b-enroll-viewport", full_page=False)
    page.get_by_role("button", name="Register").click()

    # the person page: both faces with thumbnails and quality
    expect(page.get_by_role("heading", name="Kit Harington")).to_be_visible()
    assert page.url.endswith("#/person/kit")
    faces = page.locator("#person-faces > li")
    expect(faces).to_have_count(2)
    for i in range(2):
        expect(faces.nth(i).locator("img.crop")).to_have_attribute("src", re.compile("^blob:"))
        expect(faces.nth(i).locator(".quality dd")).to_have_count(6)
    wait_js(page, "[...document.querySelectorAll('#person-faces img')].every(i => i.naturalWidth > 0)")
    crop_url = faces.nth(0).locator("img.crop").get_attribute("data-crop")
    assert crop_url and crop_url.startswith("/v1/persons/kit/faces/")
    assert requests.get(base + crop_url, headers=E2E_ADMIN).status_code == 200
    expect(page.locator("#st-gallery")).to_have_text("1 person")
    shot(page, "05-person")
    shot(page, "05b-person-viewport", full_page=False)

    # a second person, then find Kit by search; the list shows the thumbnail, face count and total
    r = requests.post(f"{base}/v1/persons", headers=E2E_CLIENT, data={"name": "Joe Biden", "person_id": "biden"},
                      files=[("image", ("b.jpg", fixture_bytes("people/Joe_Biden/0001.jpg"), "image/jpeg"))])
    assert r.status_code == 201, r.text
    page.get_by_role("link", name="People").first.click()
    rows = page.locator("#people-rows > tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#people-total")).to_have_text("2")
    page.get_by_label("Search by name").fill("harin")
    page.get_by_label("Search by name").press("Enter")
    expect(rows).to_have_count(1)
    expect(page.locator("#people-total")).to_have_text("1")
    row = rows.first
    expect(row.get_by_role("link", name="Kit Harington")).to_be_visible()
    expect(row.locator("td").nth(3)).to_have_text("2")
    expect(row.locator("img.avatar")).to_have_attribute("src", re.compile("^blob:"))
    wait_js(page, "document.querySelector('#people-rows img').naturalWidth > 0")
    shot(page, "06-people-search")

    # verify: the decision, the similarity against the threshold (admin keys see scores)
    row.get_by_role("link", name="Kit Harington").click()
    page.get_by_role("link", name="Verify a photo").click()
    expect(page.locator("#view-try").get_by_label("Person id")).to_have_value("kit")
    page.locator("#verify-file").set_input_files(fixture_path("people/Kit_Harington/0003.jpg"))
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#verify-result .decision")).to_have_text(re.compile("^Match"))
    expect(page.locator("#verify-result .score")).to_contain_text("threshold")
    # identify: two faces in one photo, Kit named, Rose unknown
    page.locator("#identify-file").set_input_files(fixture_path("multi_face/face_recognition__kit_with_rose.jpg"))
    page.get_by_role("button", name="Identify").click()
    found = page.locator("#identify-result .identified > li")
    expect(found).to_have_count(2)
    expect(page.locator("#identify-result")).to_contain_text("Kit Harington")
    expect(page.locator("#identify-result")).to_contain_text("unknown")
    shot(page, "07-try")
    page.locator("#verify-result").scroll_into_view_if_needed()
    shot(page, "07b-try-viewport", full_page=False)

    # rename, then erase after typing the (new) name
    page.goto(f"{base}/admin#/person/kit")
    page.reload()  # a fresh page: the key survives in the tab
    name = page.locator("#view-person").get_by_label("Name", exact=True)
    expect(name).to_have_value("Kit Harington")
    name.fill("Kit H.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#edit-saved")).to_have_text("Saved.")
    expect(page.get_by_role("heading", name="Kit H.")).to_be_visible()
    # add a face, then delete it (the browser's confirmation names the person)
    page.locator("#add-files").set_input_files(fixture_path("people/Kit_Harington/0003.jpg"))
    page.get_by_role("button", name="Add faces").click()
    expect(faces).to_have_count(3)
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    faces.nth(2).get_by_role("button", name="Delete face").click()
    expect(faces).to_have_count(2)
    assert dialogs == ["Delete face 3 of Kit H.?"]
    erase = page.get_by_role("button", name="Erase person")
    expect(erase).to_be_disabled()
    page.get_by_label("To confirm, type the name").fill("Kit Harington")
    expect(erase).to_be_disabled()
    page.get_by_label("To confirm, type the name").fill("Kit H.")
    expect(erase).to_be_enabled()
    shot(page, "08-erase-confirm")
    erase.click()
    expect(page.locator("#toast")).to_have_text("Erased Kit H. (kit).")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Joe Biden")
    expect(page.locator("#people-total")).to_have_text("1")
    page.get_by_label("Search by name").fill("kit")
    page.get_by_label("Search by name").press("Enter")
    expect(page.locator("#people-message")).to_have_text("Nobody’s name contains “kit”.")
    expect(rows).to_have_count(0)
    expect(page.locator("#st-gallery")).to_have_text("1 person")
    shot(page, "09-erased")

    # gone: their page, and their thumbnail URL
    assert requests.get(base + crop_url, headers=E2E_ADMIN).status_code == 404
    assert requests.get(f"{base}/v1/persons/kit", headers=E2E_ADMIN).status_code == 404
    page.goto(f"{base}/admin#/person/kit")
    expect(page.locator("#person-message")).to_have_text("There is no person with this id.")

    # sign out forgets the key
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(f"{base}/admin#/people")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_console_pages_through_people(console_server, page):
    """Keyset pages of the chosen size, forward and back, with the total."""
    from playwright.sync_api import expect

    base = console_server
    photo = fixture_bytes("people/Barack_Obama/0001.jpg")
    for i in range(12):
        r = requests.post(f"{base}/v1/persons", headers=E2E_CLIENT, data={"name": f"Page person {i:02d}"},
                          files=[("image", ("o.jpg", photo, "image/jpeg"))])
        assert r.status_code == 201, r.text
    page.goto(f"{base}/admin")
    page.get_by_label("Admin API key").fill(E2E_ADMIN["X-API-Key"])
    page.keyboard.press("Enter")
    page.get_by_label("Search by name").fill("page person")
    page.get_by_label("Search by name").press("Enter")
    rows = page.locator("#people-rows > tr")
    expect(rows).to_have_count(12)
    page.get_by_label("per page").select_option("10")
    expect(rows).to_have_count(10)
    expect(page.locator("#page-info")).to_have_text("1–10 of 12")
    expect(page.get_by_role("button", name="← Previous")).to_be_disabled()
    first_page = rows.locator("a.name").all_inner_texts()
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("#page-info")).to_have_text("11–12 of 12")
    expect(rows).to_have_count(2)
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    second_page = rows.locator("a.name").all_inner_texts()
    assert sorted(first_page + second_page) == [f"Page person {i:02d}" for i in range(12)]
    page.get_by_role("button", name="← Previous").click()
    expect(page.locator("#page-info")).to_have_text("1–10 of 12")
    assert rows.locator("a.name").all_inner_texts() == first_page
    wait_js(page, "[...document.querySelectorAll('#people-rows img')].every(i => i.naturalWidth > 0)")
    shot(page, "11-people-pages", full_page=False)


def test_console_at_phone_width_and_by_keyboard(console_server, browser):
    """Readable at 390 px, and usable without a mouse: sign in and reach a section by keyboard alone, with the
    focus visible."""
    r = requests.post(f"{console_server}/v1/persons", headers=E2E_CLIENT, data={"name": "Rose Leslie"},
                      files=[("image", ("r.jpg", fixture_bytes("people/Rose_Leslie/0001.jpg"), "image/jpeg"))])
    assert r.status_code == 201, r.text
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{console_server}/admin")
        page.get_by_role("heading", name="Sign in").wait_for()
        assert page.evaluate("document.activeElement.id") == "signin-key"  # the key field has the focus
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Sign in"
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.type(E2E_ADMIN["X-API-Key"])
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="People").wait_for()
        page.keyboard.press("Shift+Tab")  # from the content back up to the top bar: Sign out, then Try, Enroll
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.textContent") == "Enroll"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Enroll a person").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
        shot(page, "10-phone-enroll")
        page.goto(f"{console_server}/admin#/people")
        page.locator("#people-rows > tr").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the list scrolls sideways"
        shot(page, "10b-phone-people")
    finally:
        context.close()


def test_console_shows_the_progress_of_imports_through_the_api(console_server, page, tmp_path):
    """A real ``enroll import --url`` against the server while the Imports page is open: the page, asking
    again every few seconds, shows the run finish with the importer's counts, and a run still going with its
    progress, rate and ETA."""
    import json
    import subprocess
    import sys

    from playwright.sync_api import expect

    base = console_server
    listing = tmp_path / "visitors.csv"
    rows = [("imp-kit", "people/Kit_Harington/0001.jpg"), ("imp-kit", "people/Kit_Harington/0002.jpg"),
            ("imp-joe", "people/Joe_Biden/0001.jpg"), ("imp-dog", "no_face/dlib__dog.jpg")]
    listing.write_text("person_id,path\n" + "".join(f"{pid},{fixture_path(rel)}\n" for pid, rel in rows))
    page.goto(f"{base}/admin")
    page.get_by_label("Admin API key").fill(E2E_ADMIN["X-API-Key"])
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Imports")).to_be_visible()
    expect(page.locator("#imports-message")).to_have_text("No import has reported yet.")

    run = subprocess.run([sys.executable, "-m", "enroll", "import", "--csv", str(listing), "--url", base,
                          "--report", str(tmp_path / "rejected.csv")], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "ENROLL_API_KEY": E2E_CLIENT["X-API-Key"]}, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stderr.splitlines()[-2])
    row = page.locator(f"#imports-rows > tr[data-run-id='{summary['run_id']}']")
    expect(row.locator(".state")).to_have_text("finished", timeout=15_000)  # seen without reloading the page
    expect(row.locator(".done")).to_have_text("4 / 4")
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "visitors.csv" and cells[3:7] == [str(summary["enrolled"]), str(summary["added"]),
                                                     str(summary["already_there"]), "1"]  # the dog: refused

    going = {"source": "staff", "state": "running", "total": 200, "done": 50, "enrolled": 48, "rejected": 2,
             "photos_per_s": 5.0}
    assert requests.post(f"{base}/v1/imports/run-going", headers=E2E_CLIENT, json=going).status_code == 202
    row = page.locator("#imports-rows > tr[data-run-id='run-going']")
    expect(row.locator(".state")).to_have_text("running", timeout=15_000)
    expect(row.locator("progress")).to_have_attribute("value", "50")
    expect(row.locator(".done")).to_have_text("50 / 200")
    assert row.locator("td").all_inner_texts()[3:9] == ["48", "0", "0", "2", "5.0/s", "30 s"]
    shot(page, "12-imports", full_page=False)
    page.get_by_role("link", name="People").click()  # leaving the page stops its polling
    expect(page.get_by_role("heading", name="People")).to_be_visible()
