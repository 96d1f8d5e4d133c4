"""Shared fixtures: real images from tests/fixtures, Flask's ``app``/``client`` pair built by the real app
factory on a temporary data directory with a real embedded Chroma, and the app's recognizer."""
from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import pytest

from service import create_app
from service.config import load_settings, replace

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN_KEY = "test-admin-key-0123456789"
CLIENT_KEY = "test-client-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
CLIENT = {"X-API-Key": CLIENT_KEY}


def fixture_path(rel: str) -> Path:
    return FIXTURES / rel


def fixture_bytes(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(*rels: str, **fields) -> dict:
    """A multipart body: fixture images in the repeatable ``image`` field plus plain fields."""
    data = {k: v for k, v in fields.items()}
    data["image"] = [(io.BytesIO(fixture_bytes(r)), r.split("/")[-1]) for r in rels]
    return data


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    return load_settings(env={}, data_dir=str(tmp_path_factory.mktemp("faceid-data")),
                         admin_keys=ADMIN_KEY, client_keys=CLIENT_KEY)


@pytest.fixture(scope="session")
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["faceid"].close()


@pytest.fixture(scope="session")
def recognizer(app):
    return app.extensions["faceid"]


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def empty_gallery(recognizer):
    """The session's gallery with every person removed, before and after the test."""
    def wipe():
        gallery = recognizer.gallery
        while True:
            people, _ = gallery.list_persons(limit=100, offset=0)
            if not people:
                break
            for p in people:
                gallery.delete_person(p.id)
    wipe()
    yield recognizer.gallery
    wipe()


@pytest.fixture()
def make_app(settings, recognizer, tmp_path):
    """Another app on its own data dir (sharing the prepared models), with some settings changed."""
    apps = []

    def make(**changes):
        data_dir = tmp_path / f"app{len(apps)}"
        data_dir.mkdir()
        (data_dir / "models").symlink_to(settings.models_dir)
        app = create_app(replace(settings, data_dir=data_dir, **changes))
        apps.append(app)
        return app
    yield make
    for app in apps:
        app.extensions["faceid"].close()


@pytest.fixture(scope="session")
def embed_one(recognizer):
    """Embedding of the largest face in a fixture image."""
    def embed(rel: str) -> np.ndarray:
        rgb = recognizer.decode(fixture_bytes(rel))
        faces = recognizer.detector.detect(rgb)
        assert faces, f"no face in {rel}"
        return recognizer.embedder.get(rgb, faces[:1])[0]
    return embed
