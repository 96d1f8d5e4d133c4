"""The vector index: one Chroma record per person (their template), searched for 1:N. It holds nothing that
is not also in the records database, so it can always be rebuilt from it (``enroll rebuild-index``).

A model's index lives in *generations*: collections named ``index-<model>`` (generation 0, the name before
generations existed) and ``index-<model>-g<N>``. Which one is current is a row of the records database
(``galleries``), so every instance follows a rebuild on its next search; this class only opens, fills,
searches and drops the collections it is told to. Every call runs under a deadline (``CallDeadline``): a
hung index answers 503 in bounded time and never ties up the threads that verify and health need.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import chromadb.errors
import numpy as np

from ..errors import StoreUnavailable
from .chroma_client import UNAVAILABLE, bound_calls, model_collection, safe_name, store_errors

log = logging.getLogger(__name__)
T = TypeVar("T")


CENTRED_CANDIDATES = 64
FILL_TIMEOUT_S = 300.0  # one batch of a rebuild's fill (a stopped server still fails it, in minutes not never)
# Vectors per call while a rebuild fills a generation, at most what the client accepts (5,461 embedded). Chroma
# applies each call as one chunk, its HNSW inserts spread over its threads; 5,000 a call took ~20% less CPU
# than 500 for 100k people (bench.scale's realistic vectors, M 32, ef 200). A Chroma server gets the smaller
# batch: its HTTP client's timeout is the request deadline (``index_timeout_s``), and 5,000 inserts into a
# graph of 100k took longer than that (ReadTimeout, bench.scale in server mode).
FILL_BATCH = 5000
FILL_BATCH_SERVER = 500


def _page(collection: Any, offset: int) -> Any:
    return collection.get(limit=5000, offset=offset, include=[])


class GenerationGone(StoreUnavailable):
    """The collection asked for no longer exists: another instance switched generations and dropped it.
    The records store re-reads the current generation and tries again; should that happen again at once
    (two switches within one search), the request answers 503 like any store that is changing under it."""


class IndexDiskFull(StoreUnavailable):
    """The embedded index's disk has less room than ``index_min_free_mb``: the write was refused before Chroma
    saw it (the client is fine; the outbox keeps the write for later)."""


@dataclass(frozen=True)
class Hnsw:
    """HNSW settings of a generation's collection (``bench/scale.py`` and ``bench/hnsw_sweep.py`` chose them;
    see the README's scale section). M and construction ef are fixed when it is created; search ef follows the
    configuration when the store opens it (``_follow_search_ef``). Chroma's defaults (16, 100, 100) find the
    exact nearest person for only 64.5% of real probes at 100k people."""
    max_neighbors: int = 48
    ef_construction: int = 200
    ef_search: int = 400

    def configuration(self) -> dict[str, Any]:
        return {"hnsw": {"space": "cosine", "max_neighbors": self.max_neighbors,
                         "ef_construction": self.ef_construction, "ef_search": self.ef_search}}


class CallDeadline:
    """Runs index calls on a small pool of threads and waits for each at most ``timeout_s``. A call past its
    deadline is answered 503 while its thread stays stuck in the library; once every slot is stuck, further
    calls fail at once instead of queueing, so a hung index costs each request at most the deadline."""

    def __init__(self, timeout_s: float, slots: int = 8) -> None:
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(slots)
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="faceid-index")

    def run(self, op: str, fn: Callable[..., T], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> T:
        if not self._slots.acquire(blocking=False):
            log.error("index calls all stuck", extra={"op": op})
            raise StoreUnavailable("the vector index is not answering", details={"op": op})
        try:
            future: Future[T] = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        wait = self.timeout_s if timeout_s is None else timeout_s
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            log.error("index call timed out", extra={"op": op, "timeout_s": wait})
            raise StoreUnavailable("the vector index did not answer in time",
                                   details={"op": op, "timeout_s": wait}) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Gate:
    """Index calls pass freely, except while the embedded client is closed and reopened: then they wait
    (within their deadline), and the reopen waits for the calls in flight to finish."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, wait_s: float) -> Iterator[None]:
        with self._cond:
            if self._closed:
                raise StoreUnavailable("the vector index is being reopened", details={"op": "reopen"})
            self._closed = True
            if not self._cond.wait_for(lambda: self._active == 0, timeout=wait_s):
                self._closed = False
                self._cond.notify_all()
                raise StoreUnavailable("index calls did not finish", details={"op": "reopen"})
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Centre:
    """A fixed mean vector of a model's embeddings, subtracted (and the result renormalised) from every
    vector the index stores or is asked about. Real face embeddings share a large common component, which
    crowds them together and costs HNSW recall as the gallery grows; centred, they spread out. Only the
    index's ranking uses it: every candidate is re-scored on the raw template (``RecordsStore``), so
    thresholds and decisions do not change. A collection remembers the centre it was built with (``id``);
    one built with another, or none, is searched in its own space until ``enroll rebuild-index``."""
    vector: np.ndarray
    id: str

    @classmethod
    def of(cls, vector: np.ndarray) -> Centre:
        vector = np.asarray(vector, np.float32)
        return cls(vector, hashlib.sha256(vector.astype("<f4").tobytes()).hexdigest()[:16])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        moved = np.asarray(vectors, np.float32) - self.vector
        return (moved / np.maximum(np.linalg.norm(moved, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


_WRITES = frozenset({"create", "upsert", "erase"})
_READS = frozenset({"query", "ids", "heartbeat", "load"})
# Chroma 1.x answers a search that meets a collection's first write before its HNSW segment is on disk with
# this InternalError (reproduced on `chroma run`: 3 searching threads and one writer on a new collection, 31
# errors in 40 trials). It is gone a moment later, so a read retries it within its deadline instead of
# answering 503: since the index write of a registration left the registration section, the next
# registration's duplicate check can meet it (one 503 in a race of six registrations of one face, in CI).
_NOT_YET_ON_DISK = "Nothing found on disk"
# Embedded Chroma's SQLite answers SQLITE_BUSY when Chroma's own background work holds the file at that moment
# (in CI: the search-ef update of a reopen right after 5,000 vectors were written, with the other core busy).
# Nothing was written, so any call, a write too, retries it within its deadline.
_BUSY = "database is locked"
RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4)


def _transient(op: str, exc: Exception) -> bool:
    """An error that is gone a moment later: worth a retry within the call's deadline."""
    return _BUSY in str(exc) or (op in _READS and _NOT_YET_ON_DISK in str(exc))


class PersonIndex:
    """The collections of one model id on one Chroma client (embedded or server)."""

    def __init__(self, connect: Callable[[], Any], model_id: str, dim: int, *, hnsw: Hnsw = Hnsw(),
                 deadline: CallDeadline | None = None, files: Path | None = None,
                 centre: Centre | None = None, min_free_bytes: int = 64 << 20) -> None:
        self._connect = connect
        self.client = connect()
        self.model_id, self.dim, self.hnsw, self.centre = model_id, dim, hnsw, centre
        self._spaces: dict[str, Centre | None] = {}
        self.base_name = f"index-{safe_name(model_id)}"
        self.files = files  # the embedded store's folder; None for a Chroma server
        self.min_free_bytes = min_free_bytes
        self.deadline = deadline or CallDeadline(10.0)
        self._open: dict[str, Any] = {}
        self._lock = threading.RLock()  # guards the handle cache
        self._gate = _Gate()
        self._last_recovery = 0.0

    def for_model(self, model_id: str, dim: int, centre: Centre | None = None) -> PersonIndex:
        """Another model's collections on the same client (one embedded client per process), centred on
        that model's ``centre``."""
        other = PersonIndex.__new__(PersonIndex)
        other.__dict__.update(self.__dict__)
        other.model_id, other.dim, other.base_name = model_id, dim, f"index-{safe_name(model_id)}"
        other.centre = centre
        other._open, other._spaces = {}, {}
        other._lock = threading.RLock()
        return other

    def name_of(self, generation: int) -> str:
        return self.base_name if generation == 0 else f"{self.base_name}-g{generation}"

    # --- collections --------------------------------------------------------------------------------

    def _collection(self, name: str, *, create: bool = False) -> Any:
        with self._lock:
            found = self._open.get(name)
        if found is not None:
            return found
        if create:
            found = model_collection(self.client, name, self.model_id, self.dim, self.hnsw.configuration(),
                                     centre=self.centre.id if self.centre else "")
        else:
            try:
                found = self.client.get_collection(name, embedding_function=None)
            except (chromadb.errors.NotFoundError, ValueError) as exc:
                raise GenerationGone(details={"collection": name}) from exc
        self._follow_search_ef(name, found)  # an existing generation (``create`` keeps one) too
        built_with = str((found.metadata or {}).get("centre") or "")
        space = self.centre if self.centre is not None and built_with == self.centre.id else None
        if built_with and space is None:
            # Its vectors were moved by a centre this process does not have: scores stay right (every
            # candidate is re-scored on the raw template), recall does not. Say so until it is rebuilt.
            log.warning("index generation built with another centre: run `enroll rebuild-index`",
                        extra={"collection": name})
        with self._lock:
            self._open[name] = found
            self._spaces[name] = space
        return found

    def _follow_search_ef(self, name: str, collection: Any) -> None:
        """Give a generation created with another search ef the configured one. Unlike M and construction ef,
        search ef needs no rebuild, so raising it (the README's scale section) reaches existing stores. Chroma
        applies a changed ef_search when it next loads the index: at once in a process that has not searched
        it yet (this one at its start), and a Chroma server that already holds it at its next restart."""
        have = ((collection.configuration or {}).get("hnsw") or {}).get("ef_search")
        if have is not None and int(have) != self.hnsw.ef_search:
            collection.modify(configuration={"hnsw": {"ef_search": self.hnsw.ef_search}})
            log.warning("index search ef changed to the configured one", extra={
                "collection": name, "was": int(have), "now": self.hnsw.ef_search})

    def _in_space(self, name: str, vectors: np.ndarray) -> list[list[float]]:
        """``vectors`` as the collection ``name`` stores them (centred if it was built centred)."""
        space = self._spaces.get(name)
        return (space.apply(vectors) if space is not None else np.asarray(vectors, np.float32)).tolist()

    def _call(self, op: str, name: str, fn: Callable[[Any], T], *, create: bool = False,
              timeout_s: float | None = None) -> T:
        """``fn(collection)`` under the deadline; a collection dropped meanwhile is ``GenerationGone``."""
        if op in _WRITES:
            self._room_for(op)

        def attempt() -> T:
            try:
                with self._gate.call():
                    return fn(self._collection(name, create=create))
            except chromadb.errors.NotFoundError as exc:
                with self._lock:
                    self._open.pop(name, None)
                raise GenerationGone(details={"collection": name}) from exc

        def call() -> T:
            for pause in RETRIES:
                try:
                    return attempt()
                except chromadb.errors.InternalError as exc:
                    if not _transient(op, exc):
                        raise
                    time.sleep(pause)
            return attempt()
        try:
            return self.deadline.run(op, call, timeout_s=timeout_s)
        except UNAVAILABLE as exc:
            log.error("store call failed", extra={"op": op, "error": type(exc).__name__})
            raise StoreUnavailable(details={"op": op}) from exc

    def _room_for(self, op: str) -> None:
        """Refuse a write to the embedded index while its disk has less than ``min_free_bytes`` free: embedded
        Chroma that met ENOSPC mid-write was seen to hang in a later write while holding the GIL (the whole
        process froze, past any deadline). Refused here, the write stays in the outbox and is applied by the
        upkeep once there is room; a Chroma server's disk is the server's business."""
        if self.files is None:
            return
        try:
            free = shutil.disk_usage(self.files).free
        except OSError as exc:
            raise StoreUnavailable(details={"op": op}) from exc
        if free < self.min_free_bytes:
            log.error("index disk nearly full: write refused", extra={"op": op, "free_bytes": free})
            raise IndexDiskFull("the index's disk is nearly full", details={"op": op, "free_bytes": free})

    def create(self, name: str) -> None:
        """The collection ``name`` with this index's HNSW settings (kept if it exists)."""
        self._call("create", name, lambda c: None, create=True)

    def names(self) -> set[str]:
        """This model's generations that exist."""
        found = store_errors(self.deadline.run)("list", self.client.list_collections)
        return {n for n in (getattr(c, "name", c) for c in found)
                if n == self.base_name or n.startswith(self.base_name + "-g")}

    def drop(self, name: str) -> None:
        with self._lock:
            self._open.pop(name, None)
        try:
            store_errors(self.deadline.run)("drop", self.client.delete_collection, name)
        except chromadb.errors.NotFoundError:
            pass  # another instance dropped it first

    # --- records ------------------------------------------------------------------------------------

    def heartbeat(self, name: str) -> bool:
        self._call("heartbeat", name, lambda c: c.count())
        return True

    def upsert(self, name: str, entries: list[tuple[str, np.ndarray]], *, timeout_s: float | None = None) -> None:
        if entries:
            self._call("upsert", name, lambda c: c.upsert(
                ids=[pid for pid, _ in entries], embeddings=self._in_space(name, np.stack([v for _, v in entries]))),
                timeout_s=timeout_s)

    def erase(self, name: str, person_ids: list[str]) -> None:
        """Delete vectors, overwriting each first: Chroma (like hnswlib) only marks a deleted vector, and the
        real one would stay in the index file until a rebuild. Overwritten, the file holds random numbers
        from its next save on (``erasure_window`` in the README)."""
        if not person_ids:
            return
        noise = np.random.default_rng().normal(size=(len(person_ids), self.dim)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)

        def overwrite_then_delete(c: Any) -> None:
            present = set(c.get(ids=person_ids, include=[])["ids"])
            if present:
                ids = [pid for pid in person_ids if pid in present]
                c.upsert(ids=ids, embeddings=noise[:len(ids)].tolist())
                c.delete(ids=ids)
        self._call("erase", name, overwrite_then_delete)

    def query(self, name: str, embedding: np.ndarray, n: int) -> list[tuple[str, float]]:
        """At least ``n`` (person id, cosine similarity in the collection's space), best first. A centred
        collection returns more (``CENTRED_CANDIDATES``): centred and raw cosines rank a little differently, and
        the caller re-scores on the raw templates (measured on LFW-fitted galleries of 100k: the raw nearest is
        in the centred top 6 for 99.2% of real probes, in the top 64 for all). One round trip: no count() first
        (it costs time linear in the gallery, and Chroma returns fewer hits when it has fewer)."""
        def search(c: Any) -> Any:
            wanted = max(n, CENTRED_CANDIDATES) if self._spaces.get(name) is not None else n
            return c.query(query_embeddings=self._in_space(name, np.asarray(embedding, np.float32)[None]),
                           n_results=wanted, include=["distances"])
        got = self._call("query", name, search)
        return [(pid, 1.0 - float(d)) for pid, d in zip(got["ids"][0], got["distances"][0], strict=True)]

    def load(self, name: str, timeout_s: float) -> None:
        """Read the collection's HNSW index into memory now, under a deadline of its own. Chroma loads an index
        lazily, at its first query, and a big one read from a cold disk outlasts the per-call deadline (1M
        people at M 48: over 5 s), so without this the first searches after a start would answer 503."""
        probe = np.zeros((1, self.dim), np.float32)
        probe[0, 0] = 1.0
        self._call("load", name, lambda c: c.query(query_embeddings=probe.tolist(), n_results=1, include=[]),
                   timeout_s=timeout_s)

    def ids(self, name: str) -> set[str]:
        """Every indexed person id, read in pages (``enroll repair``)."""
        out: set[str] = set()
        offset = 0
        while True:
            page: Callable[[Any], Any] = functools.partial(_page, offset=offset)
            got = self._call("ids", name, page)
            if not got["ids"]:
                return out
            out.update(got["ids"])
            offset += len(got["ids"])

    def fill_batch(self) -> int:
        """How many vectors one call of ``fill`` sends: ``FILL_BATCH`` embedded, ``FILL_BATCH_SERVER`` to a
        server, or fewer if the client takes fewer."""
        most = store_errors(self.deadline.run)("batch size", self.client.get_max_batch_size)
        return max(1, min(FILL_BATCH if self.files is not None else FILL_BATCH_SERVER, int(most)))

    def fill(self, name: str, entries: Iterable[tuple[str, np.ndarray]], batch: int | None = None) -> int:
        """Add ``entries`` to ``name`` in batches (a rebuild's new generation; ``fill_batch`` unless told);
        how many were added. A batch is HNSW work for thousands of vectors: it gets ``FILL_TIMEOUT_S``, not a
        request's deadline."""
        batch = batch or self.fill_batch()
        timeout_s = max(FILL_TIMEOUT_S, self.deadline.timeout_s)
        chunk: list[tuple[str, np.ndarray]] = []
        added = 0
        with self._patient_http(timeout_s):
            for entry in entries:
                chunk.append(entry)
                if len(chunk) == batch:
                    self.upsert(name, chunk, timeout_s=timeout_s)
                    added += len(chunk)
                    chunk = []
            self.upsert(name, chunk, timeout_s=timeout_s)
        return added + len(chunk)

    @contextlib.contextmanager
    def _patient_http(self, timeout_s: float) -> Iterator[None]:
        """A server's HTTP calls bounded by ``timeout_s`` instead of a request's deadline while a fill runs:
        a batch of 500 inserts into a large graph on a loaded server outlasted the 5 s (ReadTimeout: a 1M
        rebuild in server mode failed on it at load average 7). Only ``enroll rebuild-index`` fills (its own
        process, no requests); Chroma's HTTP clients of one server share one session, so it is set back after."""
        before = bound_calls(self.client, timeout_s)
        try:
            yield
        finally:
            if before is not None:
                bound_calls(self.client, before)

    def settings_of(self, name: str) -> dict[str, Any]:
        """The HNSW settings the collection ``name`` really has (read back from Chroma)."""
        config = self._call("settings", name, lambda c: c.configuration)
        return dict((config or {}).get("hnsw") or {})

    # --- the embedded store's own files ---------------------------------------------------------------

    def _reopen(self, between: Callable[[], None] | None = None) -> None:
        """Close the client and open it again, running ``between`` while nothing holds Chroma's files open.
        Callers hold the gate exclusively."""
        with self._lock:
            self._open.clear()
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
        try:
            if between is not None:
                between()
        finally:
            self.client = self._connect()

    def recover(self, every_s: float = 30.0) -> bool:
        """Reopen the embedded client after a failure (a full disk leaves it failing until reopened), at most
        once every ``every_s``; whether it reopened."""
        if self.files is None or time.monotonic() - self._last_recovery < every_s:
            return False
        if shutil.disk_usage(self.files).free < self.min_free_bytes:  # opening writes too: wait for room
            return False
        self._last_recovery = time.monotonic()
        with self._gate.exclusive(wait_s=self.deadline.timeout_s):
            self._reopen()
        log.warning("embedded index reopened after a failure")
        return True

    def flush_and_vacuum(self, name: str, vacuum: Callable[[Path], None]) -> None:
        """Make what erasures left in the embedded index's files go: save the HNSW index now (Chroma saves it
        every ``sync_threshold`` writes, so an overwritten vector could otherwise stay in the file for a
        thousand more), then VACUUM ``chroma.sqlite3`` (its log held every vector it was given; freed pages
        keep the bytes) while Chroma has it closed. Two reopens and one VACUUM of a database without vectors:
        seconds, whatever the gallery."""
        if self.files is None:
            return
        files = self.files
        with self._gate.exclusive(wait_s=max(30.0, self.deadline.timeout_s)):
            collection = self.client.get_collection(name, embedding_function=None)
            sync = int(((collection.configuration or {}).get("hnsw") or {}).get("sync_threshold") or 1000)
            collection.modify(configuration={"hnsw": {"sync_threshold": 2}})
            try:
                self._reopen()
                collection = self.client.get_collection(name, embedding_function=None)
                noise = np.random.default_rng().normal(size=self.dim)
                collection.upsert(ids=["~flush"], embeddings=[(noise / np.linalg.norm(noise)).tolist()])
                collection.delete(ids=["~flush"])  # two writes: the index is saved
            finally:
                self.client.get_collection(name, embedding_function=None).modify(
                    configuration={"hnsw": {"sync_threshold": sync}})
                self._reopen(lambda: vacuum(files))

    def close(self) -> None:
        with self._lock:
            self._open.clear()
        self.deadline.close()
