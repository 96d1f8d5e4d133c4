"""OpenCV Zoo's SFace int8 (128-d): 112 px similarity-aligned to the ArcFace 5-point template, on cv2.dnn."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...core.records import Face
from ..align import similarity_align
from ..weights.packaged import SFACE_INT8, packaged_file
from .base import PerThread, SingleModel


class SFaceEmbedder(SingleModel):
    """This int8 file does not load in ONNX Runtime (its weights are graph inputs), so it runs on cv2.dnn,
    whose nets are not thread-safe: each thread gets its own (about 10 MB)."""

    def __init__(self, *, flip: bool = True, path: Path | None = None) -> None:
        self.model_id, self.dim, self.flip = "sface", 128, flip
        self._path_override = path
        self.path: Path | None = None
        self._nets = PerThread(lambda: cv2.dnn.readNetFromONNX(str(self.path)))

    def prepare(self) -> SFaceEmbedder:
        self.path = packaged_file(SFACE_INT8, self._path_override)
        self._nets.get()  # a file cv2 cannot read fails the start, not the first request
        return self

    @property
    def ready(self) -> bool:
        return self.path is not None

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return similarity_align(rgb, face.landmarks, 112)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        net = self._nets.get()
        out = []
        for crop in crops:  # the int8 graph has a fixed batch of one
            blob = cv2.dnn.blobFromImage(np.ascontiguousarray(crop[:, :, ::-1]), 1.0, (112, 112), (0, 0, 0),
                                         swapRB=False, crop=False)  # SFace wants BGR 0..255
            net.setInput(blob, "data")
            out.append(net.forward().reshape(-1))
        return np.stack(out)
