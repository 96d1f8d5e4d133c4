"""Identify's thresholds depend on how many photos the best candidate's template holds (issue 22): a template of
several photos sits nearer everyone, strangers included, so it needs a stricter threshold to keep the FPIR.
The per-size tables load (an older file with one table still does, for every template), a template larger than
tabulated uses the largest, and through the API a person with several photos is held to the stricter threshold
by identify and by the duplicate check (real models, real store)."""
import json
import shutil

import pytest

from service.core.calibration import Calibration, IdentifyRule
from service.errors import ConfigError

from .conftest import ADMIN, CLIENT, upload

GRID = [[1, 0.55], [1000, 0.60], [1_000_000, 0.65]]


def rule_json(**by_photos: list[list[float]]) -> dict:
    return {"name": "margin_0.25_by_photos", "beta": 0.25, "m0": 0.5,
            "thresholds": {"0.01": GRID, "0.003": GRID},
            "thresholds_by_photos": {k.lstrip("k"): {"0.01": t, "0.003": t} for k, t in by_photos.items()}}


def test_per_photo_tables_load_and_a_larger_template_uses_the_largest():
    stricter = [[n, t + 0.05] for n, t in GRID]
    strictest = [[n, t + 0.08] for n, t in GRID]
    rule = IdentifyRule.from_json(rule_json(k1=GRID, k2=stricter, k5=strictest))
    assert sorted(rule.tables) == [1, 2, 5]
    assert rule.threshold(1000, 0.01) == rule.threshold(1000, 0.01, 1) == pytest.approx(0.60)
    assert rule.threshold(1000, 0.01, 2) == pytest.approx(0.65)
    assert rule.threshold(1000, 0.01, 3) == pytest.approx(0.68)   # between two sizes: the larger's (stricter)
    assert rule.threshold(1000, 0.01, 5) == pytest.approx(0.68)
    assert rule.threshold(1000, 0.01, 40) == pytest.approx(0.68)  # beyond the largest: the largest's
    assert rule.threshold(1000, 0.01, 0) == pytest.approx(0.60)
    again = IdentifyRule.from_json(rule.to_json())
    assert again.tables == rule.tables and rule.to_json()["thresholds"] == rule.to_json()["thresholds_by_photos"]["1"]


def test_a_file_from_before_the_per_photo_tables_decides_every_template_with_its_one_table():
    old = rule_json()
    del old["thresholds_by_photos"]
    rule = IdentifyRule.from_json(old)
    assert sorted(rule.tables) == [1]
    assert [rule.threshold(1000, 0.01, k) for k in (1, 3, 9)] == [pytest.approx(0.60)] * 3
    with pytest.raises(ConfigError, match="no thresholds for one-photo templates"):
        IdentifyRule.from_json(rule_json(k2=GRID) | {"thresholds_by_photos": {"2": {"0.01": GRID}}})


def test_the_decision_needs_more_of_a_several_photo_template(tmp_path):
    (tmp_path / "lfw.json").write_text(json.dumps({"models": {"m": {"threshold_at_far_1e-3": 0.5}}}))
    (tmp_path / "open_set.json").write_text(json.dumps(
        {"model": "m", "rule": rule_json(k1=GRID, k3=[[n, t + 0.1] for n, t in GRID])}))
    d = Calibration(tmp_path / "lfw.json").open_set_decision("m", 1000, 0.01, 0.5)
    assert d.threshold == d.threshold_for(1) == pytest.approx(0.60)
    assert d.thresholds_by_photos() == {1: pytest.approx(0.60), 3: pytest.approx(0.70)}
    assert d.threshold_for(2) == pytest.approx(0.70)
    assert d.similarity_needed(None, 3) == pytest.approx(0.70 + 0.25 * 0.5)
    assert d.accepts(0.74, None, 1) and not d.accepts(0.74, None, 3)
    assert d.least_similarity == d.similarity_needed(None, 1)


def test_the_shipped_rule_is_never_looser_for_more_photos(settings):
    calibration = Calibration(settings.decisions.calibration_file)
    verify = calibration.verify_threshold(settings.recognition.model)
    for n in (10, 1000, 100_000, 1_000_000):
        for fpir in (0.01, 0.003):
            d = calibration.open_set_decision(settings.recognition.model, n, fpir, verify)
            by_photos = [d.threshold_for(k) for k in range(1, 8)]
            assert by_photos == sorted(by_photos) and by_photos[0] == d.threshold


@pytest.fixture()
def strict_for_two(settings, tmp_path):
    """The shipped calibration, except that a template of two or more photos can never be accepted: whatever
    identify or the duplicate check decides about a 2-photo person then shows which table was used."""
    shutil.copy(settings.decisions.calibration_file, tmp_path / "lfw.json")
    shipped = json.loads((settings.decisions.calibration_file.parent / "open_set.json").read_text())
    rule = IdentifyRule.from_json(shipped["rule"])
    never = {f: [[n, 0.999] for n, _ in table] for f, table in rule.tables[1].items()}
    strict = IdentifyRule(rule.name, rule.beta, rule.m0, {1: rule.tables[1], 2: never}, rule.expected_fnir)
    shipped["rule"] = strict.to_json()
    (tmp_path / "open_set.json").write_text(json.dumps(shipped))
    return tmp_path / "lfw.json"


def test_a_person_with_several_photos_is_held_to_the_stricter_threshold(make_app, strict_for_two):
    client = make_app(calibration_file=strict_for_two).test_client()

    def register(pid, name, *rels):
        r = client.post("/v1/persons", data=upload(*rels, name=name, person_id=pid),
                        content_type="multipart/form-data", headers=ADMIN)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def identify(rel):
        r = client.post("/v1/identify", data=upload(rel), content_type="multipart/form-data", headers=ADMIN)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    obama = register("obama", "Barack Obama", "people/Barack_Obama/0001.jpg", "people/Barack_Obama/0002.jpg")
    register("kit", "Kit Harington", "people/Kit_Harington/0001.jpg")
    register("biden", "Joe Biden", "people/Joe_Biden/0001.jpg")
    status = client.get("/v1/status", headers=ADMIN).get_json()["identify_rule"]
    assert status["score_threshold_by_photos"]["2"] == 0.999 > status["score_threshold_by_photos"]["1"]
    assert status["score_threshold_by_photos"]["1"] == status["score_threshold"]

    # Kit's one-photo template clears the one-photo threshold; Obama's two-photo template, best by far,
    # cannot clear the two-photo one, and the answer says what it needed
    kit = identify("people/Kit_Harington/0003.jpg")["faces"][0]
    assert kit["match"]["person_id"] == "kit" and kit["threshold"] < 1
    seen = identify("people/Barack_Obama/0003.jpg")["faces"][0]
    assert seen["match"] is None and seen["candidates"][0]["person_id"] == "obama"
    assert seen["threshold"] > 1 > seen["candidates"][0]["similarity"] > kit["threshold"]

    # the duplicate check asks the same question: Obama's photo under another name is not his (two photos)...
    r = client.post("/v1/persons", data=upload("people/Barack_Obama/0003.jpg", name="Not Obama", person_id="x"),
                    content_type="multipart/form-data", headers=CLIENT)
    assert r.status_code == 201
    assert client.delete("/v1/persons/x", headers=ADMIN).status_code == 200

    # ...and with one photo left, the one-photo table decides again: found, and a duplicate
    face_id = obama["faces"][1]["id"]
    assert client.delete(f"/v1/persons/obama/faces/{face_id}", headers=ADMIN).status_code == 200
    again = identify("people/Barack_Obama/0003.jpg")["faces"][0]
    assert again["match"]["person_id"] == "obama" and again["threshold"] < 1
    r = client.post("/v1/persons", data=upload("people/Barack_Obama/0003.jpg", name="Not Obama", person_id="y"),
                    content_type="multipart/form-data", headers=CLIENT)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "duplicate_face"
