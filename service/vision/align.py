"""Every alignment in one place: how each model wants its face cut out of the image.

* ``crop_face``: the box grown by a margin, square-resized (FaceNet; the quality crop; the stored crop);
* ``similarity_align``: the 5 landmarks warped onto ArcFace's template (SFace);
* ``dlib_chip``: dlib's own 5-point shape and 150 px face chip (dlib's ResNet).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..core.records import Face

# ArcFace's 5-point template for a 112x112 crop: eyes, nose, mouth corners, as seen in the image.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


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


def similarity_align(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face so its 5 landmarks land on the ArcFace template (rotation, scale, shift only)."""
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    dst = ARCFACE_TEMPLATE * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None or not np.all(np.isfinite(matrix)):  # degenerate landmarks: least squares fallback
        matrix = cv2.estimateAffinePartial2D(src, dst, method=0)[0]
    if matrix is None:
        matrix = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def dlib_chip(rgb: np.ndarray, face: Face, shape_predictor: Any, size: int) -> np.ndarray:
    """dlib's 5-point shape predicted inside the detector's box, then dlib's face chip (padding 0.25), as
    dlib's ResNet was trained."""
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    shape = shape_predictor(rgb, dlib.rectangle(x1, y1, x2, y2))
    return np.asarray(dlib.get_face_chip(rgb, shape, size=size, padding=0.25))
