"""FaceNet (Inception-ResNet-v1, 512-d) on ``vision.runtime``: 160 px box crops with margin, fixed
standardisation (x - 127.5) / 128."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.records import Face
from ..align import crop_face
from ..runtime import load_network
from ..weights.cache import PreparedModel
from ..weights.facenet import FACENET_DIM, FACENET_INPUT, FaceNetSource
from .base import SingleModel


class FaceNetEmbedder(SingleModel):
    input_size = FACENET_INPUT

    def __init__(self, source: FaceNetSource, models_dir: Path, *, threads: int = 0, flip: bool = True,
                 margin: int = 32) -> None:
        self.model_id = source.model_id
        self.dim = FACENET_DIM
        self.source = source
        self.models_dir = models_dir
        self.threads = threads
        self.flip = flip
        self.margin = margin
        self.prepared: PreparedModel | None = None

    def prepare(self) -> FaceNetEmbedder:
        self.prepared, self._network = load_network(self.source, self.models_dir, self.threads)
        return self

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return crop_face(rgb, face.box, self.input_size, self.margin)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = (np.stack(crops).astype(np.float32) - 127.5) / 128.0
        return self.network()(batch.transpose(0, 3, 1, 2))[0]
