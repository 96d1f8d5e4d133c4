"""An exclusive lock on the data dir for the embedded store."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import ConfigError


class DataDirLock:
    """Chroma's embedded PersistentClient is not process-safe, and two processes writing one HNSW index
    corrupt it. A second process gets a clear error instead."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "store.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = self.path.read_text().strip() or "another process"
            raise ConfigError(f"the data dir {self.path.parent} is in use by {holder}: the embedded store "
                              f"allows one process (run one gunicorn worker with threads, or use a Chroma "
                              f"server via chroma_url)", details={"lock": str(self.path)}) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
