"""The bulk import engine: people's photos in, one outcome per photo out, through either backend.

Both backends keep the service's rules because both call the same use-cases: ``ApiBackend`` through a running
service's HTTP API (any deployment, any host; the embedded store keeps serving), ``DirectBackend`` through the
in-process recognizer on the records database (the data dir's lock means the service must be stopped when the
store is embedded).

Per person: the photos the person already has (by sha256, the service keeps each face's photo hash) are
skipped; a new person is registered with the photos that pass (a photo refused for a reason of its own is
dropped and the registration retried without it); further photos are added one request each, so each gets
its own outcome and must match the person, as the API's add-faces requires. Every committed request is a
step a re-run does not repeat: a SIGKILL at any moment loses at most the request in flight, and the database's
unique (person, photo hash) index refuses a photo twice even when an answer was lost and the request retried.
"""
from __future__ import annotations

import csv
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from service.core.records import photo_hash

# Refusals of a registration as a whole that fewer photos per request may avoid.
SPLIT_ON = {"payload_too_large", "validation_error"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif"}


@dataclass(frozen=True)
class Photo:
    person_id: str
    name: str
    path: Path


@dataclass(frozen=True)
class Outcome:
    """What became of one photo. ``status``: enrolled (registered the person), added (to a known person),
    already_there (the person has this photo), rejected (refused: ``code`` and ``reason`` say why),
    not_enrolled (its person was refused as a whole, ``--all-or-nothing``)."""
    person_id: str
    file: str
    status: str
    code: str | None = None
    reason: str | None = None

    def line(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Refused(Exception):
    """The service refused a request for a reason the person or a photo has (a 4xx answer): an outcome, not
    a failure of the run."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class Failure(Exception):
    """The run cannot go on: the service is unreachable or failing, or refuses the key."""


class Backend(Protocol):
    @property
    def max_images(self) -> int | None:
        """How many photos one registration may carry (the service's ``max_images_per_request``); None: no
        limit."""
        ...

    def known_photos(self, person_id: str) -> tuple[bool | None, set[str]]:
        """Whether the person exists (None: this backend may not ask) and their photos' hashes."""
        ...

    def register(self, person_id: str, name: str, photos: Sequence[bytes]) -> None: ...

    def add(self, person_id: str, photos: Sequence[bytes]) -> None: ...

    def report(self, run_id: str, progress: dict[str, Any]) -> None:
        """Tell the service how the run goes (the admin console shows it); never fails the run."""
        ...

    def close(self) -> None: ...


def from_folder(folder: Path) -> list[list[Photo]]:
    """One sub-folder per person: the folder name is the person id, and with ``_`` as spaces their name."""
    people = []
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = [Photo(person_dir.name, person_dir.name.replace("_", " "), p) for p in sorted(person_dir.iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if photos:
            people.append(photos)
    return people


def from_csv(path: Path) -> list[list[Photo]]:
    """A CSV with a header: ``person_id``, ``path`` (relative to the CSV's folder) and optionally ``name``
    (default: the id with ``_`` as spaces). Rows of one person need not be adjacent."""
    people: dict[str, list[Photo]] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"person_id", "path"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: the header must name person_id and path (missing {', '.join(sorted(missing))})")
        for row in reader:
            pid = (row["person_id"] or "").strip()
            if not pid or not row["path"]:
                continue
            name = (row.get("name") or "").strip() or pid.replace("_", " ")
            people.setdefault(pid, []).append(Photo(pid, name, (path.parent / row["path"].strip())))
    return list(people.values())


class Progress:
    """Count, rate and ETA: a tqdm bar on a terminal, otherwise a plain line every ``every_s`` seconds."""

    def __init__(self, total: int, *, tty: bool, write: Callable[[str], None], every_s: float = 10.0) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self._write, self._every, self._last = write, every_s, self.start
        self._bar: Any = None
        if tty:
            from tqdm import tqdm
            self._bar = tqdm(total=total, unit="photo", dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._write(self.line())

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.start, 1e-9)

    def line(self) -> str:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:.0f} s" if eta != float("inf") else "?"
        return f"import: {self.done}/{self.total} photos, {rate:.1f}/s, ETA {eta_text}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class Summary:
    persons: int = 0
    photos: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    persons_enrolled: int = 0
    failure: str | None = None
    interrupted: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        done = sum(self.statuses.values())
        return {"persons": self.persons, "photos": self.photos, "done": done,
                "enrolled": self.statuses["enrolled"], "added": self.statuses["added"],
                "already_there": self.statuses["already_there"], "rejected": self.statuses["rejected"],
                "not_enrolled": self.statuses["not_enrolled"], "persons_enrolled": self.persons_enrolled,
                "rejected_by_code": dict(sorted(self.rejected_by_code.items())),
                "seconds": round(self.seconds, 1),
                "photos_per_s": round(done / self.seconds, 2) if self.seconds else 0.0,
                "interrupted": self.interrupted, "failure": self.failure}


class Importer:
    """Runs the people through a backend, ``jobs`` persons at a time (one person's photos in order), and
    reports the run's counts to the backend every ``report_every_s`` and at its end."""

    def __init__(self, backend: Backend, *, jobs: int, all_or_nothing: bool = False,
                 emit: Callable[[Outcome], None], progress: Progress, source: str = "",
                 report_every_s: float = 5.0) -> None:
        self.backend, self.jobs, self.all_or_nothing = backend, max(1, jobs), all_or_nothing
        self._emit, self.progress = emit, progress
        self.stop = threading.Event()
        self.summary = Summary()
        self._lock = threading.Lock()
        self.run_id, self.source = uuid.uuid4().hex[:16], source[-200:]
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._report_every, self._reported = report_every_s, 0.0

    def run(self, people: Sequence[Sequence[Photo]]) -> Summary:
        """Every person, until done, a real failure, or Ctrl-C (then the requests in flight finish first, so
        nothing is left half-known; a re-run picks up the rest)."""
        self.summary.persons, self.summary.photos = len(people), sum(len(p) for p in people)
        start = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="import")
        try:
            futures: list[Future[None]] = [pool.submit(self._person, list(photos)) for photos in people]
            for future in as_completed(futures):
                exc = future.exception()
                if isinstance(exc, Failure):
                    self.summary.failure = self.summary.failure or str(exc)
                    self.stop.set()
                elif exc is not None:
                    self.stop.set()
                    raise exc
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self.stop.set()
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self.summary.seconds = time.monotonic() - start
            self.progress.close()
            self._report(final=True)
        return self.summary

    def _report(self, *, final: bool = False) -> None:
        """The counts so far to the backend (``POST /v1/imports/{run_id}`` through the API), at most every
        ``report_every_s`` while running, and once at the end with how the run ended."""
        with self._lock:
            now = time.monotonic()
            if not final and now - self._reported < self._report_every:
                return
            self._reported = now
        s = self.summary
        done = sum(s.statuses.values())
        state = "running"
        if final:  # a run that ends short of its photos without a word of why broke on something unexpected
            state = "interrupted" if s.interrupted else "failed" if s.failure or done < s.photos else "finished"
        self.backend.report(self.run_id, {
            "source": self.source, "state": state, "started_at": self.started_at, "total": s.photos,
            "done": done, "photos_per_s": round(self.progress.rate(), 2),
            **{k: s.statuses[k] for k in ("enrolled", "added", "already_there", "rejected", "not_enrolled")}})

    def _record(self, outcomes: Iterable[Outcome]) -> None:
        with self._lock:
            n = 0
            for outcome in outcomes:
                n += 1
                self.summary.statuses[outcome.status] += 1
                if outcome.status == "rejected" and outcome.code:
                    self.summary.rejected_by_code[outcome.code] += 1
                self._emit(outcome)
            self.progress.advance(n)
        self._report()  # outside the lock: a slow service delays this thread's next photo, not every thread's

    def _person(self, photos: list[Photo]) -> None:
        if self.stop.is_set():
            return
        pid, name = photos[0].person_id, photos[0].name
        pending: list[tuple[Photo, bytes]] = []
        seen: dict[str, str] = {}
        exists, known = self.backend.known_photos(pid)
        for photo in photos:
            try:
                data = photo.path.read_bytes()
            except OSError as exc:
                self._record([Outcome(pid, str(photo.path), "rejected", "unreadable_file", exc.strerror or str(exc))])
                continue
            digest = photo_hash(data)
            if digest in known:
                self._record([Outcome(pid, str(photo.path), "already_there")])
            elif digest in seen:
                self._record([Outcome(pid, str(photo.path), "already_there",
                                      reason=f"the same file as {seen[digest]}")])
            else:
                seen[digest] = str(photo.path)
                pending.append((photo, data))
        if not pending:
            return
        if exists is not True:
            pending = self._register(pid, name, pending)
        if self.all_or_nothing and pending:
            self._add_together(pid, pending)
            return
        for photo, data in pending:
            if self.stop.is_set():
                return
            self._record([self._add_one(pid, photo, data)])

    def _register(self, pid: str, name: str, pending: list[tuple[Photo, bytes]]) -> list[tuple[Photo, bytes]]:
        """Register the person with the first photos that pass; what is left to add (everything, when the
        person turned out to exist: a lost answer, or another importer)."""
        limit = self.backend.max_images or len(pending)
        if self.all_or_nothing and len(pending) > limit:
            self._record([Outcome(pid, str(p.path), "not_enrolled", "too_many_photos",
                                  f"{len(pending)} photos; --all-or-nothing takes at most {limit} per person")
                          for p, _ in pending])
            return []
        chunk, rest = pending[:limit], pending[limit:]
        while chunk:
            if self.stop.is_set():
                return []
            try:
                self.backend.register(pid, name, [data for _, data in chunk])
            except Refused as refusal:
                if refusal.code == "person_exists":
                    return chunk + rest
                index = refusal.details.get("image_index")
                if not self.all_or_nothing and index is None and len(chunk) > 1 and refusal.code in SPLIT_ON:
                    # The request as a whole was too big (bytes, or photos per request): half as many.
                    half = len(chunk) // 2
                    chunk, rest = chunk[:half], chunk[half:] + rest
                    continue
                if self.all_or_nothing or not isinstance(index, int) or not 0 <= index < len(chunk):
                    # The person as a whole is refused (an invalid id, ...), or all-or-nothing: nothing enrolled.
                    self._record(self._refused_all(pid, chunk + rest, refusal, index))
                    return []
                photo, _ = chunk.pop(index)
                self._record([Outcome(pid, str(photo.path), "rejected", refusal.code, refusal.message)])
                if rest:
                    chunk.append(rest.pop(0))
                continue
            with self._lock:
                self.summary.persons_enrolled += 1
            self._record([Outcome(pid, str(p.path), "enrolled") for p, _ in chunk])
            return rest
        return []

    def _refused_all(self, pid: str, photos: list[tuple[Photo, bytes]], refusal: Refused,
                     index: int | None) -> list[Outcome]:
        out = []
        for i, (photo, _) in enumerate(photos):
            if index is None or i == index:
                out.append(Outcome(pid, str(photo.path), "rejected", refusal.code, refusal.message))
            else:
                out.append(Outcome(pid, str(photo.path), "not_enrolled", refusal.code,
                                   "another photo of this person was refused (--all-or-nothing)"))
        return out

    def _add_one(self, pid: str, photo: Photo, data: bytes) -> Outcome:
        try:
            self.backend.add(pid, [data])
        except Refused as refusal:
            if refusal.code == "duplicate_photo":
                return Outcome(pid, str(photo.path), "already_there")
            return Outcome(pid, str(photo.path), "rejected", refusal.code, refusal.message)
        return Outcome(pid, str(photo.path), "added")

    def _add_together(self, pid: str, pending: list[tuple[Photo, bytes]]) -> None:
        """--all-or-nothing for a known person: one request, like POST /v1/persons/{id}/faces."""
        try:
            self.backend.add(pid, [data for _, data in pending])
        except Refused as refusal:
            index = refusal.details.get("image_index")
            self._record(self._refused_all(pid, pending, refusal, index if isinstance(index, int) else None))
            return
        self._record([Outcome(pid, str(p.path), "added") for p, _ in pending])


def write_report(path: Path, outcomes: Iterable[Outcome]) -> int:
    """The CSV of every photo that was not enrolled, with the service's error code and reason."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["person_id", "file", "status", "code", "reason"])
        for o in outcomes:
            if o.status in ("rejected", "not_enrolled"):
                out.writerow([o.person_id, o.file, o.status, o.code or "", o.reason or ""])
                count += 1
    return count
