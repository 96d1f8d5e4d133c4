"""The composition root: settings in, the parts built and wired together. The web app, the ``enroll`` CLI
and ``service.prepare`` all build through here, so they run the same pipeline on the same store."""
from __future__ import annotations

from .config import Settings
from .core.calibration import Calibration
from .core.pipeline import FacePipeline, ImageLimits
from .core.quality import QualityLimits
from .core.recognizer import Policy, Recognizer
from .errors import ConfigError
from .store.chroma import ChromaStore
from .vision.crops import OpenCvCrops
from .vision.detector import FaceDetector
from .vision.embedders.registry import create_embedder


def build_pipeline(settings: Settings, model_id: str | None = None) -> FacePipeline:
    """Detector, embedder and crops for ``model_id`` (default: the configured one), not yet loaded."""
    detector = FaceDetector(max_side=settings.detect_max_side, min_face_size=settings.detect_min_face,
                            thresholds=settings.detect_thresholds, threads=settings.detect_threads)
    quality = QualityLimits(min_probability=settings.enroll_min_probability,
                            min_face_size=settings.enroll_min_face_size, min_blur=settings.enroll_min_blur,
                            max_yaw=settings.enroll_max_yaw, max_roll=settings.enroll_max_roll)
    return FacePipeline(detector, create_embedder(settings, model_id), OpenCvCrops(settings.face_margin),
                        image_limits=ImageLimits(settings.max_image_bytes, settings.max_image_pixels),
                        quality=quality, keep_crops=settings.store_face_crops)


def open_store(settings: Settings, model_id: str, dim: int, *, only_model: bool = True) -> ChromaStore:
    """The store of ``model_id``. With ``only_model``, a store that also holds people enrolled with another
    model id is refused: vectors of different models are not comparable, and silently serving an empty
    gallery would lose everyone (``enroll reindex`` moves them)."""
    store = ChromaStore.open(model_id=model_id, dim=dim, data_dir=settings.data_dir, chroma_url=settings.chroma_url)
    others = {m: n for m, n in store.other_models().items() if n} if only_model else {}
    if others:
        store.close()
        other = next(iter(others))
        raise ConfigError(f"this store holds persons enrolled with {other}; the service is configured for "
                          f"{model_id}. Re-enroll (python -m enroll reindex) or configure the original model",
                          details={"model_id": other})
    return store


def build_recognizer(settings: Settings) -> Recognizer:
    """Every model loaded and the store opened now: a broken model or store stops the start, and the first
    request does not pay for loading."""
    pipeline = build_pipeline(settings).prepare()
    calibration = Calibration(settings.calibration_file)
    policy = Policy(verify_threshold=settings.verify_threshold, identify_target_far=settings.identify_target_far,
                    duplicate_policy=settings.duplicate_policy, add_faces_must_match=settings.add_faces_must_match,
                    default_top_k=settings.default_top_k,
                    max_top_k=settings.max_top_k)
    if not settings.verify_threshold:  # an uncalibrated model stops the start before the store is locked
        calibration.verify_threshold(pipeline.embedder.model_id)
    store = open_store(settings, pipeline.embedder.model_id, pipeline.embedder.dim)
    try:
        return Recognizer(pipeline, store, calibration, policy)
    except BaseException:
        store.close()
        raise
