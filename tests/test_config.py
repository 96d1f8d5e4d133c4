import re
from dataclasses import fields
from pathlib import Path

import pytest

from service.config import FLAT_SETTINGS, Settings, load_settings, replace
from service.errors import ConfigError


def test_environment_overrides_file(tmp_path):
    cfg = tmp_path / "faceid.toml"
    cfg.write_text('bind = "0.0.0.0:9000"\ndetect_max_side = 800\n')
    s = load_settings(cfg, env={"FACEID_DETECT_MAX_SIDE": "1024", "FACEID_DATA_DIR": str(tmp_path / "d"),
                                "FACEID_FLIP_TTA": "false"})
    assert s.server.bind == "0.0.0.0:9000"
    assert s.detection.max_side == 1024
    assert s.server.data_dir == tmp_path / "d" and s.models_dir == tmp_path / "d" / "models"
    assert s.recognition.flip_tta is False


def test_shipped_config_file_parses():
    s = load_settings(env={})
    assert s.recognition.model == "dlib:0.65+sface:0.35"


@pytest.mark.parametrize("text,env", [('no_such_key = 1\n', {}),
                                      ('', {"FACEID_DETECT_MAX_SIDE": "big"}),
                                      ('', {"FACEID_BIND": "nowhere"}),
                                      ('', {"FACEID_FLIP_TTA": "maybe"}),
                                      ('detect_min_face = 3\n', {}),
                                      ('bind = [1\n', {})])
def test_bad_configuration_stops_the_start(tmp_path, text, env):
    cfg = tmp_path / "faceid.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(cfg, env=env)


def test_a_misspelled_environment_variable_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="FACEID_DETECT_MAX_SIZE") as err:
        load_settings(tmp_path / "none.toml", env={"FACEID_DETECT_MAX_SIZE": "800"})
    assert err.value.details["keys"] == ["FACEID_DETECT_MAX_SIZE"]
    # the settings file's own variable and other programs' variables are not settings
    (tmp_path / "empty.toml").write_text("")
    load_settings(tmp_path / "none.toml", env={"FACEID_CONFIG": str(tmp_path / "empty.toml"), "HOME": "/root"})


def test_a_settings_file_named_but_missing_stops_the_start(tmp_path):
    """FACEID_CONFIG is named on purpose: a typo there must not start the service on the defaults."""
    with pytest.raises(ConfigError, match="FACEID_CONFIG names .*none.toml, which is not a file"):
        load_settings(env={"FACEID_CONFIG": str(tmp_path / "none.toml")})


def test_every_setting_is_documented_in_the_shipped_file():
    """config/faceid.toml names every setting (commented out, with its default) and nothing else."""
    text = (Path(__file__).resolve().parent.parent / "config" / "faceid.toml").read_text()
    documented = set(re.findall(r"^#?\s?([a-z_]+) = ", text, re.M))
    documented |= set(re.findall(r"^#?\s?\[([a-z_]+)\]", text, re.M))
    assert documented == set(FLAT_SETTINGS)


def test_data_dir_and_calibration_are_settings_with_defaults(tmp_path):
    s = load_settings(tmp_path / "none.toml", env={})
    assert s.server.data_dir == Path("var") and s.decisions.calibration_file.name == "lfw.json"
    assert s.decisions.calibration_file.is_file()
    moved = load_settings(tmp_path / "none.toml", env={"FACEID_CALIBRATION_FILE": str(tmp_path / "c.json")})
    assert moved.decisions.calibration_file == tmp_path / "c.json"


def test_values_are_converted_by_type_not_by_the_annotations_text():
    """Any typed field loads, from TOML or from one environment string (a list[str] once broke the start)."""
    from service.config import coerce

    assert coerce("k", list[str], "a, b,,c") == ["a", "b", "c"]
    assert coerce("k", list[str], ["a", "b"]) == ["a", "b"]
    assert coerce("k", tuple[float, float, float], "0.6,0.7,0.7") == (0.6, 0.7, 0.7)
    assert coerce("k", dict[str, str], "x=1, y = 2") == {"x": "1", "y": "2"}
    assert coerce("k", bool, "yes") is True and coerce("k", int, "3") == 3
    for typ, bad in ((int, True), (int, "3.5"), (bool, "perhaps"), (str, 5), (tuple[float, float, float], "1,2")):
        with pytest.raises(ConfigError, match="invalid value for k"):
            coerce("k", typ, bad)


def test_settings_come_in_sections_and_keep_their_flat_names_outside(tmp_path):
    """Each part gets its section; the file, the environment and overrides name a setting as they always
    did, so no deployment's configuration changes."""
    s = load_settings(tmp_path / "none.toml", env={"FACEID_INDEX_TIMEOUT_S": "2", "FACEID_RATE_LIMITS": "false",
                                                    "FACEID_ENROLL_MIN_BLUR": "30", "FACEID_AUDIT_FILE": ""})
    assert s.store.index_timeout_s == 2 and s.rate_limits.enabled is False and s.quality.min_blur == 30
    assert s.audit.file == "" and s.audit.retention_days == 90
    assert sum(len(fields(getattr(s, section.name))) for section in fields(Settings)) == len(FLAT_SETTINGS)
    changed = replace(s, audit_retention_days=5, detect_max_side=800)
    assert (changed.audit.retention_days, changed.detection.max_side, changed.store.index_timeout_s) == (5, 800, 2)
    assert s.audit.retention_days == 90  # a copy
    with pytest.raises(ConfigError, match="unknown settings: retention_days"):
        replace(s, retention_days=5)
    with pytest.raises(ConfigError, match="detect_max_side"):
        replace(s, detect_max_side=100)
