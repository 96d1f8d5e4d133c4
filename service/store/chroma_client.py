"""Connecting to Chroma, and the one mapping of its failures onto ``StoreUnavailable``."""
from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import chromadb.errors
import httpx

from ..errors import ConfigError, StoreUnavailable
from .base import unavailable_on
from .lock import DataDirLock

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA = 1
# What a store failure looks like: the server is gone or slow, or the disk failed. Not a client's doing, and
# not our bug either.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    httpx.TransportError, httpx.HTTPStatusError, OSError, sqlite3.OperationalError, sqlite3.DatabaseError,
    chromadb.errors.InternalError, chromadb.errors.ChromaAuthError, chromadb.errors.RateLimitError,
    chromadb.errors.QuotaError)


def safe_name(model_id: str) -> str:
    """A model id as a Chroma collection name part."""
    return re.sub(r"[^a-zA-Z0-9._-]", "-", model_id).strip("-._") or "model"


store_errors = unavailable_on(UNAVAILABLE, log)


def bound_calls(client: Any, timeout: float | httpx.Timeout) -> httpx.Timeout | None:
    """Bound each HTTP call of a server's ``client`` by ``timeout`` (seconds; Chroma's client sets none);
    the bounds it had before, to set back exactly (None for an embedded client, which makes no HTTP calls)."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        return None
    before = session.timeout
    session.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout,
                                                                                         connect=min(timeout, 3.0))
    return before


def _within(timeout_s: float, chroma_url: str, connect: Callable[[], T]) -> T:
    """``connect()`` waited for at most ``timeout_s``. Chroma's HttpClient makes its first request (who am I)
    while it is constructed, on a session without any timeout, before ``bound_calls`` can bound it: a server
    that accepts connections and never answers (stopped, swamped) hung the service's start for good. On a daemon
    thread, so that a call stuck for ever does not hold the process at exit either."""
    done = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["client"] = connect()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
            result["error"] = exc
        finally:
            done.set()
    threading.Thread(target=run, name="faceid-chroma-connect", daemon=True).start()
    if not done.wait(timeout_s):
        raise StoreUnavailable(f"the Chroma server at {chroma_url} did not answer within {timeout_s} s")
    if "error" in result:
        raise result["error"]
    return result["client"]


def open_client(data_dir: Path, chroma_url: str = "", token: str = "",
                timeout_s: float = 10.0) -> tuple[Callable[[], Any], DataDirLock | None]:
    """How to connect to Chroma: the server at ``chroma_url`` (``token`` as a bearer token on every request;
    every HTTP call bounded by ``timeout_s``: Chroma's client sets none), else the embedded store in
    ``data_dir`` (locked to this process). A function, so that the embedded client can be reopened."""
    chroma_settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
    if chroma_url:
        url = urlparse(chroma_url)

        def connect_server() -> Any:
            try:
                client = _within(timeout_s, chroma_url, lambda: chromadb.HttpClient(
                    host=url.hostname or "localhost", port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https", settings=chroma_settings,
                    headers={"Authorization": f"Bearer {token}"} if token else None))
            except UNAVAILABLE + (ValueError,) as exc:
                raise StoreUnavailable(f"cannot reach the Chroma server at {chroma_url}: {exc}") from exc
            bound_calls(client, timeout_s)
            return client
        return connect_server, None
    lock = DataDirLock(data_dir)
    lock.acquire()
    store = data_dir / "chroma"
    try:
        store.mkdir(parents=True, exist_ok=True)
        os.chmod(store, 0o700)  # biometric data: owner only
    except BaseException:
        lock.release()
        raise

    def connect_embedded() -> Any:
        return chromadb.PersistentClient(path=str(store), settings=chroma_settings)
    return connect_embedded, lock


@store_errors
def model_collection(client: Any, name: str, model_id: str, dim: int, configuration: dict[str, Any],
                     centre: str = "") -> Any:
    """The collection ``name`` for vectors of ``model_id``, created if new with ``configuration`` (HNSW
    settings are fixed at creation) and the id of the centre its vectors are moved by (``chroma_index.Centre``);
    one of another model is refused (vectors of different models are not comparable)."""
    expected: dict[str, Any] = {"model_id": model_id, "dim": dim, "schema": SCHEMA}
    if centre:
        expected["centre"] = centre
    collection = client.get_or_create_collection(name, metadata=expected, embedding_function=None,
                                                 configuration=configuration)
    found = collection.metadata or {}
    if found.get("model_id") != model_id or int(found.get("dim", -1)) != dim:
        raise ConfigError(
            f"collection {name} holds {found.get('model_id')} embeddings (dim {found.get('dim')}); this "
            f"service runs {model_id} (dim {dim}). Re-enroll with `python -m enroll reindex` or "
            f"point data_dir/chroma_url at another store", details={"collection": name})
    return collection


def vacuum_files(path: Path) -> None:
    """What an embedded Chroma keeps of deleted records, removed: free pages of ``chroma.sqlite3`` (Chroma's
    own connection does not zero them; its log held every vector it was given) and HNSW folders no
    collection uses any more (a dropped generation's). Only while Chroma has the files closed
    (``PersonIndex.reopen``): VACUUM under a live connection corrupts it."""
    database = path / "chroma.sqlite3"
    if not database.is_file():
        return
    connection = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        connection.execute("VACUUM")
        live = {str(row[0]) for row in connection.execute("SELECT id FROM segments")}
    finally:
        connection.close()
    for entry in path.iterdir():
        if entry.is_dir() and entry.name not in live:
            shutil.rmtree(entry)
