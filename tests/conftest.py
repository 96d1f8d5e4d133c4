"""Shared fixtures: real images from tests/fixtures, one prepared recognizer per session, and Flask's
``app``/``client`` pair built by the real app factory on a temporary data directory."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from service import create_app
from service.config import load_settings
from service.recognizer import Recognizer

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_path(rel: str) -> Path:
    return FIXTURES / rel


def fixture_bytes(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faceid-data")


@pytest.fixture(scope="session")
def settings(data_dir):
    return load_settings(env={}, data_dir=str(data_dir))


@pytest.fixture(scope="session")
def recognizer(settings) -> Recognizer:
    return Recognizer(settings).prepare()


@pytest.fixture(scope="session")
def embed_one(recognizer):
    """Embedding of the largest face in a fixture image."""
    def embed(rel: str) -> np.ndarray:
        rgb = recognizer.decode(fixture_bytes(rel))
        faces = recognizer.detector.detect(rgb)
        assert faces, f"no face in {rel}"
        return recognizer.embedder.get(rgb, faces[:1])[0]
    return embed


@pytest.fixture()
def app(settings):
    return create_app(settings)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def fresh_dir(tmp_path) -> Path:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
