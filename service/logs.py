"""Structured JSON logs, one object per line. Biometric data (image bytes, embeddings) is never logged:
callers pass only ids, counts, scores and decisions in ``extra``."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

# Set by the HTTP layer for the duration of a request, so core modules' log lines (decisions) carry the
# request id without knowing about HTTP.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        out: dict[str, Any] = {"ts": stamp, "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage()}
        if request_id.get() is not None:
            out["request_id"] = request_id.get()
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level.upper())
