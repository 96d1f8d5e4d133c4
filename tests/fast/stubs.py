"""Stand-ins for the models, for the fast tier: a detector and an embedder that read identity from the pixels
of synthetic images, so the rules, the web layer and the stores run in milliseconds on real code paths.

A test photo is a flat-coloured PNG: its red channel's band (``person``) is who it shows, its green channel
(``shot``) which photo of them. An image darker than ``NO_FACE_BELOW`` has no face; one at least twice as
wide as it is tall has two (left and right halves)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from service.core.records import Face

DIM = 32
NO_FACE_BELOW = 8
_BAND = 16  # red levels per person: 16 people


def photo(person: int, shot: int = 0, *, size: int = 200, faces: int = 1, fmt: str = "PNG") -> bytes:
    """A synthetic photo of ``person`` (0-14); ``faces=0`` a dark image without a face."""
    if faces == 0:
        rgb = np.zeros((size, size, 3), np.uint8)
    else:
        rgb = np.zeros((size, size * faces, 3), np.uint8)
        rgb[..., 0] = _BAND * person + _BAND // 2
        rgb[..., 1] = 40 + 7 * shot
        rgb[..., 2] = 90
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def _face(x0: float, side: float) -> Face:
    box = np.array([x0 + 0.2 * side, 0.2 * side, x0 + 0.8 * side, 0.8 * side], np.float32)
    w = 0.6 * side
    left, top = box[0], box[1]
    landmarks = np.array([[left + 0.3 * w, top + 0.4 * w], [left + 0.7 * w, top + 0.4 * w],
                          [left + 0.5 * w, top + 0.6 * w], [left + 0.35 * w, top + 0.8 * w],
                          [left + 0.65 * w, top + 0.8 * w]], np.float32)
    return Face(box=box, landmarks=landmarks, probability=0.999)


class StubDetector:
    ready = True

    def prepare(self) -> StubDetector:
        return self

    def detect(self, rgb: np.ndarray, *, main_face: bool = False, min_size: float = 0.0) -> list[Face]:
        if rgb.mean() < NO_FACE_BELOW:
            return []
        side = float(rgb.shape[0])
        count = max(1, rgb.shape[1] // rgb.shape[0])
        faces = [_face(i * side, side) for i in range(count)]
        return faces[:1] if main_face else faces


class StubEmbedder:
    """One axis per person, a little of the shot's own direction: two photos of one person score ~0.98, two
    people ~0.0."""
    model_id, dim, ready = "stub", DIM, True

    def prepare(self) -> StubEmbedder:
        return self

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        return rgb[y0:y1, x0:x1]

    def embed(self, crops: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(crops), DIM), np.float32)
        for i, crop in enumerate(crops):
            red, green = float(crop[..., 0].mean()), float(crop[..., 1].mean())
            out[i, int(red) // _BAND] = 1.0
            out[i, 16 + int(green) % 16] = 0.15
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])


class StubCrops:
    def sharpness(self, rgb: np.ndarray, face: Face) -> float:
        return 500.0

    def stored_crop(self, rgb: np.ndarray, face: Face) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb[:32, :32]).save(buf, "JPEG")
        return buf.getvalue()


# A calibration for the stub model in the benchmark's format: verify at 0.5; identify's impostor curve
# rising slowly with the gallery.
CALIBRATION = {"models": {"stub": {
    "threshold_at_far_1e-3": 0.5,
    "identify_impostor_curve": [[1e-7, 0.7], [1e-5, 0.65], [1e-3, 0.5], [1e-1, 0.3]]}}}
