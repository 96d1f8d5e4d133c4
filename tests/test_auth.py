
import pytest

from service.config import load_settings
from service.core.keys import hash_key
from service.errors import ConfigError
from service.keys import load_keys
from service.store.database import open_database

from .conftest import ADMIN, CLIENT
from .helpers import assert_error


@pytest.mark.parametrize("method,url", [("post", "/v1/detect"), ("post", "/v1/persons"), ("get", "/v1/persons"),
                                        ("post", "/v1/verify"), ("post", "/v1/identify"), ("post", "/v1/compare"),
                                        ("delete", "/v1/persons/x"), ("patch", "/v1/persons/x")])
def test_every_v1_endpoint_needs_a_key(client, method, url):
    assert_error(getattr(client, method)(url), 401, "unauthorized")
    assert_error(getattr(client, method)(url, headers={"X-API-Key": "wrong-key-0123456789"}), 401, "unauthorized")


@pytest.mark.parametrize("method,url", [("get", "/v1/persons"), ("get", "/v1/persons/x"),
                                        ("delete", "/v1/persons/x"), ("patch", "/v1/persons/x"),
                                        ("delete", "/v1/persons/x/faces/y")])
def test_client_keys_cannot_use_admin_endpoints(client, method, url):
    assert_error(getattr(client, method)(url, headers=CLIENT), 403, "forbidden")


def test_admin_key_may_use_client_endpoints(client):
    assert_error(client.post("/v1/detect", headers=ADMIN, json={}), 400, "validation_error")


def test_health_docs_and_openapi_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    spec = client.get("/openapi.json").get_json()
    assert "/v1/identify" in spec["paths"] and spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    page = client.get("/docs")
    assert page.status_code == 200 and "duplicate_face" in page.get_data(as_text=True)


def _loaded(tmp_path, settings, announce=None):
    engine = open_database(settings.store.database_url, tmp_path)
    return load_keys(settings, engine, announce=announce), engine


def test_first_start_creates_keys_once_and_keeps_only_hashes(tmp_path):
    settings = load_settings(env={}, data_dir=str(tmp_path))
    shown = []
    ring, engine = _loaded(tmp_path, settings, shown.append)
    assert len(shown) == 1
    secrets = [line.split(":", 1)[1].split()[0] for line in shown[0].splitlines() if "key:" in line]
    admin_key, client_key = secrets
    assert ring.authenticate(admin_key).scopes == ("admin",)
    assert ring.authenticate(client_key).scopes == ("enroll", "verify", "identify")
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert admin_key.encode() not in stored and client_key.encode() not in stored
    assert hash_key(admin_key).encode() in stored
    engine.dispose()
    again, engine = _loaded(tmp_path, settings, shown.append)  # second start: nothing new printed
    assert len(shown) == 1 and again.authenticate(client_key) and again.authenticate("nope") is None
    engine.dispose()


def test_environment_keys_stop_the_first_start_keys(tmp_path):
    settings = load_settings(env={"FACEID_ADMIN_KEYS": "a" * 20 + "," + "b" * 20, "FACEID_CLIENT_KEYS": "c" * 20},
                             data_dir=str(tmp_path))
    ring, engine = _loaded(tmp_path, settings, lambda text: pytest.fail("must not generate keys"))
    assert ring.authenticate("b" * 20).scopes == ("admin",) and ring.authenticate("c" * 20).allows("verify")
    assert ring.table.empty()
    engine.dispose()
    with pytest.raises(ConfigError):
        _loaded(tmp_path, load_settings(env={"FACEID_CLIENT_KEYS": "short"}, data_dir=str(tmp_path)))


def test_first_start_keys_never_reach_a_log(tmp_path, capsys, caplog):
    """Under a process manager stderr is the log: the keys go to an owner-only file, the log says where."""
    import logging
    with caplog.at_level(logging.INFO):
        ring, engine = _loaded(tmp_path, load_settings(env={}, data_dir=str(tmp_path)))
    keys_file = tmp_path / "first-start-keys.txt"
    text = keys_file.read_text()
    assert keys_file.stat().st_mode & 0o777 == 0o600
    admin = text.split("admin key:")[1].split()[0]
    assert ring.authenticate(admin).scopes == ("admin",)
    assert admin not in capsys.readouterr().err and admin not in caplog.text
    assert [r.file for r in caplog.records if r.name == "faceid.keys"] == [str(keys_file)]
    engine.dispose()
