"""Thresholds come from the benchmark's results: verify takes the stricter data set, identify tightens with
gallery size and never drops below verify."""
import json

import pytest

from service.core.calibration import Calibration
from service.errors import ConfigError


@pytest.fixture()
def results(tmp_path):
    path = tmp_path / "lfw.json"
    path.write_text(json.dumps({"models": {
        "m": {"threshold_at_far_1e-3": 0.70, "celeba_dev_threshold_at_far_1e-3": 0.73,
              "identify_impostor_curve": [[1e-6, 0.80], [1e-4, 0.75], [1e-2, 0.60]]},
        "lfw-only": {"threshold_at_far_1e-3": 0.70}}}))
    return path


def test_verify_threshold_is_the_stricter_data_sets(results):
    assert Calibration(results).verify_threshold("m") == pytest.approx(0.73)
    assert Calibration(results).verify_threshold("lfw-only") == pytest.approx(0.70)


def test_uncalibrated_model_is_a_config_error(results):
    with pytest.raises(ConfigError, match="no calibrated threshold"):
        Calibration(results).verify_threshold("unknown")
    with pytest.raises(ConfigError, match="no impostor curve"):
        Calibration(results).threshold_for_far("lfw-only", 1e-3)


def test_identify_threshold_grows_with_gallery_and_never_drops_below_verify(results):
    small, far_small = Calibration(results).identify_threshold("m", 1, 0.01, 0.5)
    large, far_large = Calibration(results).identify_threshold("m", 10_000, 0.01, 0.5)
    assert far_small == pytest.approx(0.01)
    assert far_large == pytest.approx(1 - 0.99 ** (1 / 10_000))
    assert small == pytest.approx(0.60)  # read off the curve at FAR 1e-2
    assert 0.75 < large < 0.80  # FAR ~1e-6 .. 1e-4, interpolated in log FAR
    assert Calibration(results).identify_threshold("m", 1, 0.01, 0.65)[0] == pytest.approx(0.65)


def test_shipped_results_calibrate_the_default_model(settings):
    threshold = Calibration(settings.decisions.calibration_file).verify_threshold(settings.recognition.model)
    entry = json.loads(settings.decisions.calibration_file.read_text())["models"][settings.recognition.model]
    assert threshold == max(entry["threshold_at_far_1e-3"], entry["celeba_dev_threshold_at_far_1e-3"])
