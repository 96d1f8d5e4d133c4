"""Shared fixtures: real images from tests/fixtures, Flask's ``app``/``client`` pair built by the real app
factory on a temporary data directory with a real embedded Chroma, and the app's recognizer."""
from __future__ import annotations

import io
import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.servers import free_port, start_chroma
from service import create_app
from service.config import load_settings, replace
from service.web import close_app
from service.web.context import get_recognizer

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN_KEY = "test-admin-key-0123456789"
CLIENT_KEY = "test-client-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
CLIENT = {"X-API-Key": CLIENT_KEY}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long files first. ``make test``'s two workers take whole files in collection order
    (``--dist loadfile --no-loadscope-reorder``); a file of a minute or more taken last kept one worker busy
    while the other sat idle (xdist's default order puts the files with the fewest tests, the longest here,
    last)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def fixture_path(rel: str) -> Path:
    return FIXTURES / rel


def fixture_bytes(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


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
    close_app(app)


@pytest.fixture(scope="session")
def recognizer(app):
    return get_recognizer(app)


@pytest.fixture(scope="session")
def pipeline(recognizer):
    return recognizer.pipeline


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def empty_store(recognizer):
    """The session's gallery with every person removed, before and after the test."""
    def wipe():
        gallery = recognizer.store
        while True:
            people, _ = gallery.list_persons(limit=100, offset=0)
            if not people:
                break
            for p in people:
                gallery.delete_person(p.id)
    wipe()
    yield recognizer.store
    wipe()


@pytest.fixture()
def make_app(settings, recognizer, tmp_path):
    """Another app on its own data dir (sharing the prepared models), with some settings changed."""
    apps = []
    made = itertools.count()

    def make(**changes):
        data_dir = tmp_path / f"app{next(made)}"  # a start that failed leaves its dir behind
        data_dir.mkdir()
        (data_dir / "models").symlink_to(settings.models_dir)
        app = create_app(replace(settings, data_dir=data_dir, **changes))
        apps.append(app)
        return app
    yield make
    for app in apps:
        close_app(app)


@pytest.fixture(scope="session")
def embed_one(recognizer):
    """Embedding of the largest face in a fixture image."""
    def embed(rel: str) -> np.ndarray:
        rgb = recognizer.pipeline.decode(fixture_bytes(rel))
        faces = recognizer.pipeline.detector.detect(rgb)
        assert faces, f"no face in {rel}"
        return recognizer.pipeline.embedder.get(rgb, faces[:1])[0]
    return embed


def start_chroma_server(path: Path) -> tuple[str, subprocess.Popen]:
    """A real `chroma run` server on a free loopback port, storing in ``path``."""
    try:
        return start_chroma(path)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture()
def chroma_server(tmp_path):
    url, proc = start_chroma_server(tmp_path / "chroma")
    yield url, proc
    stop(proc)


@pytest.fixture(scope="session")
def shared_chroma_server(tmp_path_factory):
    """One server for tests that only need one to exist (each uses its own model id namespace)."""
    url, proc = start_chroma_server(tmp_path_factory.mktemp("chroma-server"))
    yield url
    stop(proc)


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries are missing: `make test` installs them (apt-get install postgresql)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (Debian's binaries) on a temp dir and a free loopback port, for the session;
    yields a function that creates a fresh database and returns its URL. initdb refuses to run as root, so
    as root the server runs as the `postgres` system user."""
    import os
    import shutil
    import tempfile

    bin_dir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="faceid-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run(as_user + list(args), check=True, capture_output=True, timeout=120)
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "faceid", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "start",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
    names = iter(range(1_000_000))

    def new_database() -> str:
        name = f"faceid{next(names)}"
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "faceid", name)
        return f"postgresql+psycopg://faceid@127.0.0.1:{port}/{name}"
    try:
        yield new_database
    finally:
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def postgres_url(postgres_server):
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server()


# --- a real headless Chromium (Debian's), driven by Playwright --------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = ["--disable-gpu", "--disable-dev-shm-usage"] + (["--no-sandbox"] if os.geteuid() == 0 else [])
        from .helpers import chromium_path

        browser = p.chromium.launch(executable_path=chromium_path(), args=args)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" and "the server responded with a status of" not in m.text else None)
    yield page
    context.close()
    assert problems == [], problems  # no script error, no CSP violation
