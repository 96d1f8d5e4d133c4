"""The import engine's two ways to the same use-cases: a running service's HTTP API, or the recognizer in
this process. Each turns the service's refusals (4xx) into ``Refused`` and everything the run cannot go on
after (unreachable, 5xx after retries, a refused key) into ``Failure``."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from service.errors import FaceIdError, StoreUnavailable

from .importer import Failure, Refused

if TYPE_CHECKING:
    from service.core.recognizer import Recognizer

log = logging.getLogger(__name__)
# Answers worth another try after a pause: the service is starting, draining, busy or rate-limiting.
RETRY_STATUSES = {429, 502, 503, 504}


class ApiBackend:
    """POST /v1/persons and /v1/persons/{id}/faces with an ``enroll`` key; with an admin key it also reads
    a known person's photo hashes first (GET /v1/persons/{id}), so a re-run uploads only what is new. With an
    enroll-only key the service answers ``duplicate_photo`` for photos the person has (cheap: before any
    image work)."""

    def __init__(self, url: str, key: str, *, max_images: int = 10, timeout_s: float = 120.0,
                 retries: int = 6) -> None:
        self.base, self.key, self.max_images = url.rstrip("/"), key, max_images
        self.timeout, self.retries = (10.0, timeout_s), retries
        self._local = threading.local()
        self._can_read = True
        self._reports = True  # progress reports for the admin console (``report``)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:  # a Session is not safe to share between threads
            session = self._local.session = requests.Session()
            session.headers["X-API-Key"] = self.key
        return session

    def check(self) -> None:
        """Fail fast and plainly when the service is not there or not ready."""
        try:
            r = self._session().get(f"{self.base}/readyz", timeout=self.timeout)
        except requests.RequestException as exc:
            raise Failure(f"cannot reach the service at {self.base}: {exc}") from None
        if r.status_code != 200:
            raise Failure(f"the service at {self.base} is not ready (HTTP {r.status_code})")

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, retried on connection errors and busy answers with backoff (``Retry-After`` when
        given). A retried registration or add whose first answer was lost comes back 409 ``person_exists`` or
        ``duplicate_photo``, which the engine takes as done: retrying never duplicates."""
        delay = 1.0
        for attempt in range(self.retries + 1):
            try:
                r = self._session().request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if r.status_code not in RETRY_STATUSES:
                    return r
                problem = f"HTTP {r.status_code}"
                delay = max(delay, _retry_after(r))
            if attempt == self.retries:
                raise Failure(f"{method} {path}: {problem} after {self.retries} retries")
            time.sleep(min(delay, 30.0))
            delay *= 2
        raise AssertionError("unreachable")

    def _answer(self, r: requests.Response) -> dict[str, Any]:
        if r.status_code < 300:
            return dict(r.json())
        try:
            error = r.json()["error"]
            code, message, details = str(error["code"]), str(error["message"]), dict(error.get("details") or {})
        except (ValueError, KeyError, TypeError):
            raise Failure(f"the service answered HTTP {r.status_code} without an error body") from None
        if r.status_code in (401, 403) or r.status_code >= 500:
            raise Failure(f"the service refused the request: {code}: {message}")
        raise Refused(code, message, details)

    def known_photos(self, person_id: str) -> tuple[bool | None, set[str]]:
        if not self._can_read:
            return None, set()
        r = self._call("GET", f"/v1/persons/{quote(person_id, safe='')}")
        if r.status_code == 403:  # an enroll-only key: the service tells duplicates apart instead
            self._can_read = False
            return None, set()
        if r.status_code == 404:
            return False, set()
        if r.status_code == 400:  # an id the service does not take: registration will say why
            return False, set()
        body = self._answer(r)
        return True, {f["source_sha256"] for f in body.get("faces", []) if f.get("source_sha256")}

    def register(self, person_id: str, name: str, photos: Sequence[bytes]) -> None:
        files = [("image", (f"{i}.jpg", data, "application/octet-stream")) for i, data in enumerate(photos)]
        self._answer(self._call("POST", "/v1/persons", data={"name": name, "person_id": person_id}, files=files))

    def add(self, person_id: str, photos: Sequence[bytes]) -> None:
        files = [("image", (f"{i}.jpg", data, "application/octet-stream")) for i, data in enumerate(photos)]
        self._answer(self._call("POST", f"/v1/persons/{quote(person_id, safe='')}/faces", files=files))

    def report(self, run_id: str, progress: dict[str, Any]) -> None:
        """One try, a short wait, never an error: the import goes on whatever becomes of its progress. A
        service that does not take reports (one from before them, or a key it refuses) is not asked again."""
        if not self._reports:
            return
        try:
            r = self._session().post(f"{self.base}/v1/imports/{run_id}", json=progress, timeout=(5.0, 10.0))
        except requests.RequestException:
            return
        if r.status_code in (401, 403, 404, 405):
            self._reports = False
        elif r.status_code >= 400 and r.status_code not in RETRY_STATUSES:
            log.warning("the service refused the import's progress report (HTTP %s)", r.status_code)
            self._reports = False

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _retry_after(r: requests.Response) -> float:
    try:
        return float(r.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0


class DirectBackend:
    """The recognizer and store of this process, on the records database (the service's own rules, no
    HTTP). A store that is busy or down is retried like a 503."""
    max_images = None

    def __init__(self, recognizer: Recognizer, retries: int = 3) -> None:
        self.recognizer, self.retries = recognizer, retries

    def _do(self, what: str, call: Any) -> None:
        for attempt in range(self.retries + 1):
            try:
                call()
                return
            except StoreUnavailable as exc:
                if attempt == self.retries:
                    raise Failure(f"{what}: the store is unavailable: {exc.message}") from None
                time.sleep(2.0 ** attempt)
            except FaceIdError as exc:
                if exc.status >= 500:
                    raise Failure(f"{what}: {exc.code}: {exc.message}") from None
                raise Refused(exc.code, exc.message, exc.details) from None

    def known_photos(self, person_id: str) -> tuple[bool | None, set[str]]:
        store = self.recognizer.store
        try:
            if store.get_person(person_id) is None:
                return False, set()
            return True, {f.source_sha256 for f in store.faces_of(person_id) if f.source_sha256}
        except StoreUnavailable as exc:
            raise Failure(f"the store is unavailable: {exc.message}") from None

    def register(self, person_id: str, name: str, photos: Sequence[bytes]) -> None:
        self._do("register", lambda: self.recognizer.enroll(images=photos, name=name, person_id=person_id))

    def add(self, person_id: str, photos: Sequence[bytes]) -> None:
        self._do("add faces", lambda: self.recognizer.add_faces(person_id, photos))

    def report(self, run_id: str, progress: dict[str, Any]) -> None:
        """No service to tell: the console shows imports that go through the API."""

    def close(self) -> None:
        self.recognizer.close()
