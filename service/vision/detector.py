"""Face detection: MTCNN (facenet-pytorch, weights shipped in the package).

MTCNN's cost grows with the pixel count, while a face that is recognisable at all is still found on a
640 px copy, so detection runs on a downscaled copy and boxes and landmarks are mapped back to the full image.
Crops are then cut from the full-resolution image (``align``), so a large phone photo keeps its detail.
"""
from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from ..core.records import Face


class FaceDetector:
    """MTCNN on a size-capped copy of the image."""

    def __init__(self, *, max_side: int = 640, min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), threads: int = 0) -> None:
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.threads = threads
        self._mtcnn: Any = None
        self._lock = threading.Lock()

    def prepare(self) -> FaceDetector:
        import torch
        from facenet_pytorch.models.mtcnn import MTCNN

        if self.threads:
            torch.set_num_threads(self.threads)
        self._mtcnn = MTCNN(keep_all=True, min_face_size=self.min_face_size, thresholds=list(self.thresholds),
                            post_process=False, device="cpu")
        return self

    @property
    def ready(self) -> bool:
        return self._mtcnn is not None

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Every face in ``rgb``, largest first."""
        if self._mtcnn is None:
            self.prepare()
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < 12:  # below MTCNN's smallest window: nothing to find
            return []
        import torch

        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        faces = [Face(box=np.asarray(b, np.float64) / scale, landmarks=np.asarray(p, np.float64) / scale,
                      probability=float(pr))
                 for b, pr, p in zip(boxes, probs, points)]
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces
