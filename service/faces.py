"""Face detection (MTCNN) and the crops the embedders need.

MTCNN's cost grows with the pixel count, while a face that is recognisable at all is still found on a
640 px copy, so detection runs on a downscaled copy and boxes and landmarks are mapped back to the full image.
Crops are then cut from the full-resolution image, so a large phone photo keeps its detail.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the decoded (upright) image."""
    box: np.ndarray          # x1, y1, x2, y2 (float)
    landmarks: np.ndarray    # (5, 2): left eye, right eye, nose, left mouth corner, right mouth corner
    probability: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        """The shorter side of the box: what limits how much identity detail the face carries."""
        return min(self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": {"x": round(float(self.box[0]), 1), "y": round(float(self.box[1]), 1),
                    "width": round(self.width, 1), "height": round(self.height, 1)},
            "landmarks": {name: [round(float(x), 1), round(float(y), 1)]
                          for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)},
            "probability": round(self.probability, 4),
        }


LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class FaceDetector:
    """MTCNN (facenet-pytorch, weights shipped in the package) on a size-capped copy of the image."""

    def __init__(self, *, max_side: int = 640, min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), threads: int = 0) -> None:
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.threads = threads
        self._mtcnn = None
        self._lock = threading.Lock()

    def prepare(self) -> "FaceDetector":
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


def crop_face(rgb: np.ndarray, box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """The square-resized crop of ``box`` grown by ``margin`` pixels *of the output size* (facenet-pytorch's
    convention, which equals Sandberg's absolute 32 px on LFW-sized faces and stays proportional on large
    ones). Cut from the full-resolution image and clipped at its borders, as in training."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / max(size - margin, 1)
    my = margin * (y2 - y1) / max(size - margin, 1)
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    if right - left < 2 or bottom - top < 2:
        # A box entirely outside the image cannot come from MTCNN; guard anyway with a 2x2 crop.
        left, top = min(max(int(x1), 0), w - 2), min(max(int(y1), 0), h - 2)
        right, bottom = left + 2, top + 2
    patch = rgb[top:bottom, left:right]
    shrinking = patch.shape[0] > size or patch.shape[1] > size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
