"""``/metrics`` for Prometheus: request latency per endpoint, decisions, errors by code, rate-limit hits,
gallery size, detection and embedding seconds, the audit queue's depth.

Why multiprocess mode: gunicorn runs several worker processes and a scrape reaches one of them; with
``PROMETHEUS_MULTIPROC_DIR`` set (``config/gunicorn.conf.py`` sets and empties it at start) every worker
writes its samples to files there and any worker's ``/metrics`` sums them all. Without it (tests, a plain
``create_app()``) the samples live in this process.

The endpoint answers an admin key (``X-API-Key``) or the metrics token (``metrics_token``, sent as
``Authorization: Bearer ...``, which is what Prometheus's ``authorization`` setting sends); it is not rate
limited, so a scrape never eats a key's budget. Labels are bounded: an endpoint is its route template, never
a raw path, and an error is its stable code.
"""
from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from typing import Any, cast

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..core.ports import Detector, Embedder
from ..errors import StoreUnavailable, Unauthorized
from .auth import is_admin
from .context import get_audit, get_recognizer, get_settings

bp = Blueprint("metrics", __name__)
PATH = "/metrics"

# Latency buckets for a face service: a health check takes a millisecond, a verify tens to hundreds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram("faceid_request_seconds", "Time to answer a request, by route template",
                            ["method", "endpoint"], buckets=_BUCKETS)
REQUESTS = Counter("faceid_requests", "Requests answered, by route template and HTTP status",
                   ["method", "endpoint", "status"])
ERRORS = Counter("faceid_errors", "Error answers, by the error's stable code", ["code", "status"])
RATE_LIMITED = Counter("faceid_rate_limited", "Requests refused by a rate limit (429), by route template",
                       ["endpoint"])
DECISIONS = Counter("faceid_decisions", "Verify and identify decisions (identify's no match is 'unknown')",
                    ["op", "decision"])
DETECT_SECONDS = Histogram("faceid_detect_seconds", "MTCNN time per image", buckets=_BUCKETS)
EMBED_SECONDS = Histogram("faceid_embed_seconds", "Alignment and embedding time per call (all faces of an image)",
                          buckets=_BUCKETS)
AUDIT_QUEUE = Gauge("faceid_audit_queue_depth", "Audit events waiting for the audit table writer",
                    multiprocess_mode="livesum")


def multiprocess_dir() -> str | None:
    found = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return found if found and os.path.isdir(found) else None


class _DecisionCounter(logging.Handler):
    """Counts the recognizer's decision log lines: the decisions are already logged once, in one place, so
    counting them there keeps the core free of metrics."""

    def emit(self, record: logging.LogRecord) -> None:
        op, decision = getattr(record, "op", None), getattr(record, "decision", None)
        if op in ("verify", "identify") and isinstance(decision, str):
            DECISIONS.labels(op, "unknown" if op == "identify" and decision == "no_match" else decision).inc()


class _TimedDetector:
    """The detector, timed. Wraps rather than edits the pipeline: the core knows nothing of metrics."""

    def __init__(self, inner: Detector) -> None:
        self._inner = inner

    def detect(self, rgb: Any, **kwargs: Any) -> Any:
        with DETECT_SECONDS.time():
            return self._inner.detect(rgb, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self._inner = inner

    def get(self, rgb: Any, faces: Any) -> Any:
        with EMBED_SECONDS.time():
            return self._inner.get(rgb, faces)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _GallerySize(Collector):
    """Asked at scrape time (a cheap count), so it is right whichever instance changed the gallery."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("faceid_gallery_persons", "Persons enrolled (the whole gallery)")
        try:
            family.add_metric([], float(get_recognizer(self.app).gallery_size()))
        except StoreUnavailable:
            return
        yield family


_decision_handler = _DecisionCounter()


def init_app(app: Flask) -> None:
    """Time every request, count its outcome, wrap the pipeline's detector and embedder, serve /metrics."""
    decisions = logging.getLogger("faceid.decisions")
    if _decision_handler not in decisions.handlers:
        decisions.addHandler(_decision_handler)
        decisions.setLevel(logging.INFO)
    pipeline = get_recognizer(app).pipeline
    if not isinstance(pipeline.detector, _TimedDetector):
        pipeline.detector = cast(Detector, _TimedDetector(pipeline.detector))
    if not isinstance(pipeline.embedder, _TimedEmbedder):
        pipeline.embedder = cast(Embedder, _TimedEmbedder(pipeline.embedder))
    app.extensions["faceid.metrics.gallery"] = _GallerySize(app)

    @app.after_request
    def _observe(response: Response) -> Response:
        if request.path == PATH:
            return response
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUEST_SECONDS.labels(request.method, endpoint).observe(elapsed)
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        code = g.get("error_code")
        if code:
            ERRORS.labels(code, str(response.status_code)).inc()
        if response.status_code == 429:
            RATE_LIMITED.labels(endpoint).inc()
        audit = get_audit(app)
        if audit is not None:
            AUDIT_QUEUE.set(audit.queued())
        return response

    app.register_blueprint(bp)


def _authorised() -> bool:
    token = get_settings().keys.metrics_token
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].encode(), token.encode()):
        return True
    return is_admin()


@bp.get(PATH)
def metrics() -> Response:
    if not _authorised():
        raise Unauthorized("send an admin key in X-API-Key or the metrics token as 'Authorization: Bearer ...'")
    directory = multiprocess_dir()
    if directory is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
    else:
        registry = REGISTRY
    from flask import current_app

    gallery = current_app.extensions["faceid.metrics.gallery"]
    body = generate_latest(registry) + generate_latest(_Single(gallery))
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


class _Single(CollectorRegistry):
    """A registry of one collector that is asked at scrape time, never registered globally (tests open
    several apps in one process)."""

    def __init__(self, collector: Collector) -> None:
        super().__init__(auto_describe=False)
        self._one = collector

    def collect(self) -> Iterator[Any]:
        yield from self._one.collect()
