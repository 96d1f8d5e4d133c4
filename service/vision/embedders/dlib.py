"""dlib's ResNet (128-d): dlib's 5-point shape and 150 px face chip (``align.dlib_chip``), the network itself
converted to ONNX (``weights.dlib_resnet``): the same vectors as dlib's own inference to ~3e-7, about 20x
faster. dlib does only the landmarks and the chip, with one shape predictor per thread."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...core.records import Face
from ..align import dlib_chip
from ..runtime import PerThread, load_network
from ..weights.cache import PreparedModel
from ..weights.dlib_resnet import DLIB_DIM, DLIB_INPUT, DlibResNetSource
from ..weights.packaged import DLIB_RESNET, DLIB_SHAPE_5, packaged_file
from .base import SingleModel


class DlibEmbedder(SingleModel):
    def __init__(self, models_dir: Path, *, threads: int = 0, flip: bool = True, shape_path: Path | None = None,
                 resnet_path: Path | None = None) -> None:
        self.model_id, self.dim, self.flip = "dlib", DLIB_DIM, flip
        self.models_dir, self.threads = models_dir, threads
        self._overrides = (shape_path, resnet_path)
        self.shape_path: Path | None = None
        self.prepared: PreparedModel | None = None
        self._predictors = PerThread(self._load_predictor)

    def prepare(self) -> DlibEmbedder:
        shape_path = packaged_file(DLIB_SHAPE_5, self._overrides[0])
        source = DlibResNetSource(self.model_id, packaged_file(DLIB_RESNET, self._overrides[1]))
        self.prepared, self._network = load_network(source, self.models_dir, self.threads)
        self.shape_path = shape_path
        return self

    def _load_predictor(self) -> Any:
        import dlib
        return dlib.shape_predictor(str(self.shape_path))

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        if not self.ready:
            self.prepare()
        return dlib_chip(rgb, face, self._predictors.get(), DLIB_INPUT)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.network()(np.stack(crops).transpose(0, 3, 1, 2))[0]  # RGB 0..255, normalised in-graph
