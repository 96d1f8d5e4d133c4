"""Identify's open-set rule as shipped (``bench/results/open_set.json``, made by ``bench/open_set.py``): the
service decides with exactly the thresholds the benchmark measured, they tighten with the gallery and the FPIR,
the rule weighs the second candidate, and a model without an open-set entry keeps the per-comparison rule."""
import json

import pytest

from service.core.calibration import Calibration
from service.errors import ConfigError


@pytest.fixture(scope="module")
def shipped(settings):
    path = settings.decisions.calibration_file.parent / "open_set.json"
    return Calibration(settings.decisions.calibration_file), json.loads(path.read_text())


def test_the_default_model_decides_with_the_benchmarked_rule(settings, shipped):
    calibration, results = shipped
    rule = calibration.identify_rule(settings.recognition.model)
    assert results["model"] == settings.recognition.model and rule is not None
    assert rule.name == results["rule"]["name"] == results["selection"]["chosen"]
    verify = calibration.verify_threshold(settings.recognition.model)
    assert results["rule"]["thresholds"] == results["rule"]["thresholds_by_photos"]["1"]  # older readers: 1 photo
    for photos, tables in results["rule"]["thresholds_by_photos"].items():
        for fpir, table in tables.items():
            for n, threshold in table:  # at the tabulated sizes the service's threshold is the benchmark's
                d = calibration.open_set_decision(settings.recognition.model, n, float(fpir), verify)
                assert d.threshold_for(int(photos)) == pytest.approx(min(threshold, 0.999))
                assert d.least_similarity >= verify


def test_thresholds_tighten_with_gallery_size_and_fpir(settings, shipped):
    calibration, _ = shipped
    verify = calibration.verify_threshold(settings.recognition.model)
    sizes = [1, 10, 1000, 4321, 100_000, 1_000_000, 10_000_000]
    for fpir in (0.01, 0.003):
        least = [calibration.open_set_decision(settings.recognition.model, n, fpir, verify).least_similarity
                 for n in sizes]
        assert least == sorted(least)
        assert least[0] == pytest.approx(verify)  # one person: verify's 1:1 threshold decides
        assert least[-1] > least[-2]              # beyond the table the last segment is extended, not flat
    for n in (1000, 100_000, 1_000_000):
        loose = calibration.open_set_decision(settings.recognition.model, n, 0.01, verify)
        strict = calibration.open_set_decision(settings.recognition.model, n, 0.003, verify)
        assert strict.least_similarity >= loose.least_similarity
        assert loose.expected_fnir is not None and strict.expected_fnir >= loose.expected_fnir
    with pytest.raises(ConfigError, match="outside the calibrated FPIRs"):
        calibration.open_set_decision(settings.recognition.model, 1000, 0.2, verify)


def test_templates_of_several_photos_get_stricter_thresholds(settings, shipped):
    """Measured: strangers score higher against a mean of several photos; the per-size tables keep the FPIR."""
    calibration, results = shipped
    verify = calibration.verify_threshold(settings.recognition.model)
    assert sorted(int(k) for k in results["rule"]["thresholds_by_photos"]) == [1, 2, 3, 4, 5]
    for n in (1000, 100_000, 1_000_000):
        d = calibration.open_set_decision(settings.recognition.model, n, 0.01, verify)
        assert d.threshold_for(3) > d.threshold_for(1) and d.threshold_for(9) == d.threshold_for(5)
    # on the same real searches, the per-size thresholds never let more strangers through than one table did
    rows = {(r["data"], r["photos_enrolled"], r["gallery"], r["fpir"], r["rule"]): r for r in results["rows"]
            if r["measured"]}
    one_table = results["rule"]["name"].split("_by_photos")[0]
    compared = [(r, rows[(*key[:4], one_table)]) for key, r in rows.items() if key[4] == results["rule"]["name"]
                and key[1] != 1]
    assert {r["photos_enrolled"] for r, _ in compared} == {3, "1-5"}
    assert all(new["fpir_measured"] <= old["fpir_measured"] for new, old in compared)


def test_the_people_bound_is_never_looser_than_the_point_tails(shipped):
    """The shipped thresholds are fitted to a people bound of the impostor tails, which lies at or above the
    point fit everywhere: on the same real searches it lets no more strangers through than the rule fitted to
    the point tails (``margin_0.25_by_photos`` until then), and it pays for that in mated searches."""
    _, results = shipped
    name = results["rule"]["name"]
    assert name.endswith("_people95") and "impostor_tails_by_photos_people95" in results
    point = name.removesuffix("_people95")
    rows = {(r["data"], r["photos_enrolled"], r["gallery"], r["fpir"], r["measured"], r["rule"]): r
            for r in results["rows"]}
    compared = [(r, rows[(*key[:5], point)]) for key, r in rows.items() if key[5] == name]
    assert len(compared) > 100
    assert all(new["threshold"] >= old["threshold"] for new, old in compared)
    assert all(new["fpir_measured"] <= old["fpir_measured"] for new, old in compared if new["measured"])
    assert all(new["fnir"] >= old["fnir"] for new, old in compared if new["measured"])
    for data, tails in results["impostor_tails_by_photos_people95"].items():
        for k, bound in tails.items():
            assert bound["q1e-6"] >= results["impostor_tails_by_photos"][data][k]["q1e-6"]


def test_a_close_second_candidate_raises_what_the_best_needs(settings, shipped):
    calibration, _ = shipped
    model = settings.recognition.model
    d = calibration.open_set_decision(model, 100_000, 0.01, calibration.verify_threshold(model))
    alone = d.similarity_needed(None)
    crowded = d.similarity_needed(alone - 0.01)
    assert d.accepts(alone, None) and not d.accepts(alone - 1e-4, None)
    if d.rule.beta:
        assert crowded > alone and not d.accepts(alone, alone - 0.01)
    else:
        assert crowded == alone


def test_measured_rows_cover_the_acceptance_table(shipped):
    _, results = shipped
    rows = results["rows"]
    assert {"gallery", "fpir", "photos_enrolled", "fnir", "measured", "rule"} <= rows[0].keys()
    rules = {r["rule"] for r in rows}
    assert {"previous", results["rule"]["name"]} <= rules
    for n in (1000, 10_000, 100_000, 1_000_000):
        for k in (1, 3):
            for fpir in (0.01, 0.003):
                assert any(r["gallery"] == n and r["photos_enrolled"] == k and r["fpir"] == fpir for r in rows)
    measured = [r for r in rows if r["measured"]]
    assert measured and max(r["gallery"] for r in measured) >= 4000


def test_a_model_without_open_set_results_keeps_the_per_comparison_rule(tmp_path):
    path = tmp_path / "lfw.json"  # no open_set.json beside it
    path.write_text(json.dumps({"models": {"m": {"threshold_at_far_1e-3": 0.70,
                                                 "identify_impostor_curve": [[1e-6, 0.80], [1e-2, 0.60]]}}}))
    d = Calibration(path).open_set_decision("m", 10_000, 0.01, 0.70)
    assert d.rule.name == "per_comparison_far" and d.rule.beta == 0 and d.expected_fnir is None
    assert d.least_similarity == pytest.approx(Calibration(path).identify_threshold("m", 10_000, 0.01, 0.70)[0])
