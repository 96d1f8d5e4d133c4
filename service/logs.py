"""Structured JSON logs, one object per line. Biometric data (image bytes, embeddings) is never logged:
callers pass only ids, counts, scores and decisions in ``extra``."""
from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import Any

# Set by the HTTP layer for the duration of a request, so core modules' log lines (decisions) carry the
# request id without knowing about HTTP.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Who asks (an API key's id: the first 12 hex digits of its SHA-256, never the key) and from where: set by the
# HTTP layer, carried by every line, so the audit trail says who did what to whom.
actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)
AUDITED = ("faceid.decisions", "faceid.audit")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        out: dict[str, Any] = {"ts": stamp, "level": record.levelname.lower(), "logger": record.name,
                               "pid": record.process, "msg": record.getMessage()}  # pid: which worker
        for name, var in (("request_id", request_id), ("actor", actor), ("client_ip", client_ip)):
            if var.get() is not None:
                out[name] = var.get()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


# Libraries that log a line per call at INFO (the HTTP client under the Chroma client logs every request to
# the Chroma server): warnings only, unless the service itself logs at DEBUG.
QUIET_LIBRARIES = ("httpx", "httpcore", "urllib3", "chromadb", "posthog", "opentelemetry", "alembic", "limits")


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level.upper())


def configure_audit(path: Path | None, retention_days: int) -> None:
    """The audit trail: every decision (enroll, verify, identify, add/delete faces, erase) and every refused
    key, as JSON lines in ``path`` (owner-only), one file a day, ``retention_days`` of them kept. Lines carry
    ids, decisions and scores, never image bytes or embeddings."""
    if path is None:
        return
    for name in AUDITED:
        logger = logging.getLogger(name)
        if any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        handler = TimedRotatingFileHandler(path, when="midnight", backupCount=retention_days, utc=True)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
