"""The upkeep thread, one per worker: every few seconds it applies what the index outbox still holds (an
index that was down or full catches up without a restart) and drops index generations no search can still
use; at start and then every ``compact_interval_s`` seconds, when anything was erased since the last
compaction (a marker file in the data dir remembers that across restarts), it makes the erasures final on
disk. Every instance runs it; the store's locks make one at a time do the work."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..core.recognizer import Recognizer
from ..errors import FaceIdError

log = logging.getLogger("faceid.upkeep")
UPKEEP_EVERY_S = 5.0
STOP_WAIT_S = 30.0  # a round's calls each have a deadline; a compaction at 1M people took 5 s


def start(recognizer: Recognizer, compact_every_s: int,
          upkeep_every_s: float = UPKEEP_EVERY_S) -> Callable[[], None]:
    """Starts the thread; the function returned stops it and waits (up to ``STOP_WAIT_S``) for the round in
    progress, so that the store is not closed under it (which logged a traceback as if upkeep had a bug).
    ``compact_every_s`` 0 switches compaction off (not the outbox)."""
    stop = threading.Event()

    def guarded(what: str, work: object) -> None:
        try:
            work()  # type: ignore[operator]
        except FaceIdError as exc:  # a store is down: the next round tries again
            log.warning(f"{what} failed", extra={"code": exc.code})
        except Exception:  # a bug: say so loudly, but keep the schedule (erasure and the outbox depend on it)
            log.exception(f"{what} failed")

    def run() -> None:
        next_compaction = time.monotonic() if compact_every_s > 0 else float("inf")
        while True:
            guarded("index upkeep", recognizer.upkeep)
            if time.monotonic() >= next_compaction:
                guarded("compaction", recognizer.compact)
                next_compaction = time.monotonic() + compact_every_s
            if stop.wait(upkeep_every_s):
                return
    thread = threading.Thread(target=run, name="faceid-upkeep", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(STOP_WAIT_S)
    return halt
