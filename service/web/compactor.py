"""Scheduled compaction: erased faces and persons leave bytes in the index's files (Chroma only marks
deleted vectors) and in SQLite's write-ahead log until the store is compacted. A daemon thread per worker
compacts at start and then every ``compact_interval_s`` seconds, whenever anything was erased since the last
compaction (a marker file in the data dir remembers that across restarts)."""
from __future__ import annotations

import logging
import threading

from ..core.recognizer import Recognizer
from ..errors import FaceIdError

log = logging.getLogger("faceid.compactor")


def start(recognizer: Recognizer, interval_s: int) -> threading.Event | None:
    """The stop event of the started thread, or None when compaction is switched off (interval 0)."""
    if interval_s <= 0:
        return None
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                recognizer.compact()
            except FaceIdError as exc:  # the store is down: try again at the next interval
                log.warning("compaction failed", extra={"code": exc.code})
            except Exception:  # a bug: say so loudly, but keep the schedule (erasure depends on it)
                log.exception("compaction failed")
            if stop.wait(interval_s):
                return
    threading.Thread(target=run, name="faceid-compactor", daemon=True).start()
    return stop
