"""The fast tier's app: the real app factory, web layer, recognizer and rules, with the stub models of
``stubs`` and the in-memory store (``make test-fast``: no model, no index, no database server)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import create_app
from service.compose import Service, image_limits, policy, quality_limits
from service.config import Settings, load_settings, replace
from service.core.calibration import Calibration
from service.core.keys import Keys
from service.core.pipeline import FacePipeline
from service.core.recognizer import Recognizer
from service.keys import load_keys
from service.store.database import open_database
from service.store.memory import MemoryStore
from service.web import close_app

from ..conftest import ADMIN_KEY, CLIENT_KEY
from .stubs import CALIBRATION, DIM, StubCrops, StubDetector, StubEmbedder


@pytest.fixture(scope="session")
def fast_settings(tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("fast-data")
    calibration = data_dir / "calibration.json"
    calibration.write_text(json.dumps(CALIBRATION))
    return load_settings(env={}, data_dir=str(data_dir), admin_keys=ADMIN_KEY, client_keys=CLIENT_KEY,
                         calibration_file=str(calibration), rate_limits=False)


def stub_service(settings: Settings, store: MemoryStore | None = None) -> Service:
    """The parts ``open_service`` builds, with stub models and the memory store; keys in SQLite."""
    pipeline = FacePipeline(StubDetector(), StubEmbedder(), StubCrops(), image_limits=image_limits(settings.limits),
                            quality=quality_limits(settings.quality))
    engine = open_database("", Path(settings.server.data_dir))
    keys: Keys = load_keys(settings, engine)
    recognizer = Recognizer(pipeline, store or MemoryStore("stub", DIM),
                            Calibration(settings.decisions.calibration_file), policy(settings.decisions))
    return Service(recognizer, keys, None, engine.dispose)


@pytest.fixture()
def app(fast_settings, tmp_path):
    settings = replace(fast_settings, data_dir=tmp_path)
    app = create_app(settings, service=stub_service(settings))
    yield app
    close_app(app)


@pytest.fixture()
def client(app):
    return app.test_client()
