"""The core use-cases, called by the HTTP layer and the CLI alike: bytes in, decisions out.

Holds the long-lived models (detector, embedder) so they are loaded once per process and shared by every
request thread. Knows nothing about HTTP.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Settings
from .embedder import Embedder, create_embedder
from .faces import Face, FaceDetector
from .images import decode_image


@dataclass
class Detection:
    image_width: int
    image_height: int
    faces: list[Face]


class Recognizer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.detector = FaceDetector(max_side=settings.detect_max_side, min_face_size=settings.detect_min_face,
                                     thresholds=settings.detect_thresholds, threads=settings.detect_threads)
        self.embedder: Embedder = create_embedder(settings)

    def prepare(self) -> "Recognizer":
        """Load every model now, so the first request does not pay for it and a broken model stops the start."""
        self.detector.prepare()
        self.embedder.prepare()
        return self

    @property
    def ready(self) -> bool:
        return self.detector.ready and self.embedder.ready

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, max_bytes=self.settings.max_image_bytes,
                            max_pixels=self.settings.max_image_pixels)

    def detect(self, data: bytes) -> Detection:
        rgb = self.decode(data)
        return Detection(image_width=rgb.shape[1], image_height=rgb.shape[0], faces=self.detector.detect(rgb))
