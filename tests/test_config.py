
import pytest

from service.config import load_settings
from service.errors import ConfigError


def test_environment_overrides_file(tmp_path):
    cfg = tmp_path / "faceid.toml"
    cfg.write_text('bind = "0.0.0.0:9000"\ndetect_max_side = 800\n')
    s = load_settings(cfg, env={"FACEID_DETECT_MAX_SIDE": "1024", "FACEID_DATA_DIR": str(tmp_path / "d"),
                                "FACEID_FLIP_TTA": "false"})
    assert s.bind == "0.0.0.0:9000"
    assert s.detect_max_side == 1024
    assert s.data_dir == tmp_path / "d" and s.models_dir == tmp_path / "d" / "models"
    assert s.flip_tta is False


def test_shipped_config_file_parses():
    s = load_settings(env={})
    assert s.model == "dlib:0.65+sface:0.35"


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
