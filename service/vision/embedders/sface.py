"""OpenCV Zoo's SFace (128-d): 112 px similarity-aligned to the ArcFace 5-point template. The int8 file's
weights dequantised once to a float32 graph (``weights.sface``), run on ``vision.runtime``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.records import Face
from ..align import similarity_align
from ..runtime import load_network
from ..weights.cache import PreparedModel
from ..weights.packaged import SFACE_INT8, packaged_file
from ..weights.sface import SFACE_DIM, SFACE_INPUT, SFaceFp32Source
from .base import SingleModel


class SFaceEmbedder(SingleModel):
    def __init__(self, models_dir: Path, *, threads: int = 0, flip: bool = True, path: Path | None = None) -> None:
        self.model_id, self.dim, self.flip = "sface", SFACE_DIM, flip
        self.models_dir, self.threads = models_dir, threads
        self._path_override = path
        self.prepared: PreparedModel | None = None

    def prepare(self) -> SFaceEmbedder:
        source = SFaceFp32Source(packaged_file(SFACE_INT8, self._path_override))
        self.prepared, self._network = load_network(source, self.models_dir, self.threads)
        return self

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return similarity_align(rgb, face.landmarks, SFACE_INPUT)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(crops)[:, :, :, ::-1].transpose(0, 3, 1, 2)  # SFace wants BGR 0..255, NCHW
        return self.network()(batch)[0]
