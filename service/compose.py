"""The composition root: settings in, the parts built and wired together. The web app, the ``enroll`` CLI
and ``service.prepare`` all build through here, so they run the same pipeline on the same store."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from .config import Decisions, Limits, Quality, Settings
from .core.calibration import Calibration
from .core.keys import Keys
from .core.pipeline import FacePipeline, ImageLimits
from .core.quality import QualityLimits
from .core.recognizer import Policy, Recognizer
from .errors import ConfigError, StoreUnavailable
from .keys import load_keys
from .logs import AUDITED
from .store.audit import AuditTableHandler
from .store.chroma_client import open_client
from .store.chroma_index import CallDeadline, Centre, Hnsw, PersonIndex
from .store.database import LOCK_FILE, open_database
from .store.legacy import migrate_chroma_only
from .store.records import RecordsStore, StoreLimits
from .store.schema import persons
from .vision.crops import OpenCvCrops
from .vision.detector import FaceDetector
from .vision.embedders.registry import create_embedder
from .vision.threads import set_opencv_threads

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, model_id: str | None = None) -> FacePipeline:
    """Detector, embedder and crops for ``model_id`` (default: the configured one), not yet loaded."""
    recognition, detection = settings.recognition, settings.detection
    set_opencv_threads(recognition.opencv_threads)
    detector = FaceDetector(settings.models_dir, max_side=detection.max_side, min_face_size=detection.min_face,
                            thresholds=detection.thresholds, threads=recognition.detect_threads,
                            probe_face_ratio=detection.probe_face_ratio)
    return FacePipeline(detector, create_embedder(settings, model_id), OpenCvCrops(recognition.face_margin),
                        image_limits=image_limits(settings.limits), quality=quality_limits(settings.quality),
                        keep_crops=settings.store.store_face_crops)


def image_limits(limits: Limits) -> ImageLimits:
    return ImageLimits(limits.max_image_bytes, limits.max_image_pixels, limits.max_decoded_bytes)


def quality_limits(quality: Quality) -> QualityLimits:
    return QualityLimits(min_probability=quality.min_probability, min_face_size=quality.min_face_size,
                         min_blur=quality.min_blur, max_yaw=quality.max_yaw, max_roll=quality.max_roll)


def policy(decisions: Decisions) -> Policy:
    return Policy(verify_threshold=decisions.verify_threshold, identify_target_far=decisions.identify_target_far,
                  duplicate_policy=decisions.duplicate_policy, add_faces_must_match=decisions.add_faces_must_match,
                  default_top_k=decisions.default_top_k, max_top_k=decisions.max_top_k)


def records_engine(settings: Settings) -> Engine:
    """The records database the settings name, each call under ``database_timeout_s``."""
    return open_database(settings.store.database_url, settings.server.data_dir, settings.store.database_timeout_s)


def open_store(settings: Settings, model_id: str, dim: int, *, only_model: bool = True,
               engine: Engine | None = None) -> RecordsStore:
    """The store of ``model_id``: records in SQL, templates in the Chroma index, brought up to date from the
    outbox (``RecordsStore.open``: what changed, never a scan of everyone). With ``only_model``, a database
    that also holds people enrolled with another model id is refused: vectors of different models are not
    comparable, and silently serving an empty gallery would lose everyone (``enroll reindex`` moves them). A
    data dir written before records moved to SQL is refused until ``enroll migrate`` has moved it. With
    ``engine``, the store uses that database engine and leaves it to its owner to close."""
    own_engine = engine is None
    if engine is None:
        engine = records_engine(settings)
    try:
        connect, lock = open_client(settings.server.data_dir, settings.store.chroma_url, settings.store.chroma_token,
                                    settings.store.index_timeout_s)
    except BaseException:
        if own_engine:
            engine.dispose()
        raise
    closers = ([engine.dispose] if own_engine else []) + ([lock.release] if lock else [])
    try:
        index = PersonIndex(connect, model_id, dim,
                            hnsw=Hnsw(settings.store.index_hnsw_m, settings.store.index_hnsw_construction_ef,
                                      settings.store.index_hnsw_search_ef),
                            deadline=CallDeadline(settings.store.index_timeout_s),
                            centre=index_centre(settings.store.index_centres_file, model_id),
                            files=None if settings.store.chroma_url else settings.server.data_dir / "chroma",
                            min_free_bytes=settings.store.index_min_free_mb << 20)
        closers.insert(0, index.close)
        _refuse_unmigrated(index.client, engine, model_id)
        if only_model:
            _refuse_other_models(engine, model_id)
        store = RecordsStore(engine, index, model_id, dim, lock_file=settings.server.data_dir / LOCK_FILE,
                             limits=StoreLimits(lock_wait_s=settings.store.database_timeout_s),
                             closers=closers)
        store.open()
    except BaseException:
        for close in closers:
            close()
        raise
    return store


def index_centre(path: Path, model_id: str) -> Centre | None:
    """The centre ``bench.centre`` fitted for ``model_id`` (None: the index stays uncentred)."""
    try:
        entry = json.loads(path.read_text()).get(model_id) if path.is_file() else None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read index centres {path}: {exc}") from exc
    return Centre.of(np.asarray(entry["centre"], np.float32)) if entry else None


def migrate(settings: Settings, report: Callable[[dict[str, Any]], None]) -> int:
    """``enroll migrate``: the Chroma-only format of the data dir (or Chroma server) moved into the records
    database and the index."""
    engine = open_database(settings.store.database_url, settings.server.data_dir)
    try:
        connect, lock = open_client(settings.server.data_dir, settings.store.chroma_url, settings.store.chroma_token,
                                    settings.store.index_timeout_s)
        try:
            return migrate_chroma_only(connect(), engine, settings.server.data_dir / LOCK_FILE, report)
        finally:
            if lock:
                lock.release()
    finally:
        engine.dispose()


def _refuse_other_models(engine: Engine, model_id: str) -> None:
    with engine.connect() as db:
        other = db.execute(select(persons.c.model_id, func.count()).where(persons.c.model_id != model_id)
                           .group_by(persons.c.model_id)).first()
    if other is not None:
        raise ConfigError(f"this store holds persons enrolled with {other[0]}; the service is configured for "
                          f"{model_id}. Re-enroll (python -m enroll reindex) or configure the original model",
                          details={"model_id": other[0]})


def _refuse_unmigrated(client: Any, engine: Engine, model_id: str) -> None:
    names = {getattr(c, "name", c) for c in client.list_collections()}
    legacy = [n for n in names if n.startswith(("faces-", "persons-"))]
    if legacy:
        raise ConfigError(f"the store holds records in the old format (Chroma collections {', '.join(sorted(legacy))});"
                          f" stop the service and run `python -m enroll migrate` to move them into the records "
                          f"database", details={"collections": sorted(legacy), "model_id": model_id})


def build_keys(settings: Settings, *, first_start: bool = True) -> Keys:
    """The API keys: configured ones plus the records database's table (with ``first_start``, the first
    keys are created when there are none)."""
    engine = open_database(settings.store.database_url, settings.server.data_dir)
    try:
        return load_keys(settings, engine, first_start=first_start)
    except BaseException:
        engine.dispose()
        raise


def attach_audit_table(settings: Settings, engine: Engine) -> AuditTableHandler:
    """The audit loggers also write to the records database's ``audit_events`` (``audit_table``)."""
    handler = AuditTableHandler(engine, settings.audit.retention_days)
    for name in AUDITED:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return handler


def detach_audit_table(handler: AuditTableHandler) -> None:
    for name in AUDITED:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def _recognizer_parts(settings: Settings) -> tuple[FacePipeline, Calibration, Policy]:
    """The models loaded and the calibration read, before any store is opened or locked: a broken model or
    an uncalibrated one stops the start first."""
    pipeline = build_pipeline(settings).prepare()
    calibration = Calibration(settings.decisions.calibration_file)
    if not settings.decisions.verify_threshold:
        calibration.verify_threshold(pipeline.embedder.model_id)
    return pipeline, calibration, policy(settings.decisions)


def build_recognizer(settings: Settings) -> Recognizer:
    """Every model loaded and the store opened now: a broken model or store stops the start, and the first
    request does not pay for loading."""
    pipeline, calibration, rules = _recognizer_parts(settings)
    store = open_store(settings, pipeline.embedder.model_id, pipeline.embedder.dim)
    return Recognizer(pipeline, store, calibration, rules)


def load_index(store: RecordsStore, timeout_s: float) -> None:
    """The index read into memory before the process serves, so that no request waits for it (at 1M people
    from a cold disk that outlasts a search's own deadline). An index that does not answer in time does not stop
    the start: verify and health need none, and searches answer 503 until it has loaded."""
    try:
        seconds = store.load_index(timeout_s)
    except StoreUnavailable:
        log.warning("index not loaded at start: searches answer 503 until it is", extra={"timeout_s": timeout_s})
        return
    if seconds is not None:
        log.info("index loaded", extra={"seconds": round(seconds, 2)})


@dataclass(frozen=True)
class Service:
    """What one serving process holds: the recognizer, the keys and the audit table on one database engine.
    ``close`` releases everything, in the reverse order of opening."""
    recognizer: Recognizer
    keys: Keys
    audit: AuditTableHandler | None
    close: Callable[[], None]


def open_service(settings: Settings) -> Service:
    """The serving process's parts on one database engine: one pool and one Alembic upgrade per process,
    whatever reads or writes the records database (the store, the keys, the audit table). One exit stack
    undoes a start that fails halfway, and later the whole process's close."""
    pipeline, calibration, rules = _recognizer_parts(settings)
    with ExitStack() as stack:
        engine = records_engine(settings)
        stack.callback(engine.dispose)
        store = open_store(settings, pipeline.embedder.model_id, pipeline.embedder.dim, engine=engine)
        stack.callback(store.close)
        load_index(store, settings.store.index_load_timeout_s)
        keys = load_keys(settings, engine)
        audit = None
        if settings.audit.table:
            audit = attach_audit_table(settings, engine)
            stack.callback(detach_audit_table, audit)
        return Service(Recognizer(pipeline, store, calibration, rules), keys, audit, stack.pop_all().close)
