"""What the core needs from the vision layer, as protocols: the core never imports a model runtime."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .records import Face


class Detector(Protocol):
    @property
    def ready(self) -> bool: ...

    def prepare(self) -> Any: ...

    def detect(self, rgb: np.ndarray, *, main_face: bool = False) -> list[Face]:
        """Every face in ``rgb``, largest first. ``main_face``: the caller needs only the largest, so the
        detector may skip searching for small ones."""
        ...


class Embedder(Protocol):
    """Aligns a face the way its model was trained and embeds it: L2-normalised float32 vectors."""
    model_id: str
    dim: int

    @property
    def ready(self) -> bool: ...

    def prepare(self) -> Any: ...

    def align(self, rgb: np.ndarray, face: Face) -> Any: ...

    def embed(self, crops: Sequence[Any]) -> np.ndarray: ...

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray: ...


class FaceCrops(Protocol):
    """The model-independent crops of a face: one to measure sharpness on, one to keep as a thumbnail."""

    def sharpness(self, rgb: np.ndarray, face: Face) -> float: ...

    def stored_crop(self, rgb: np.ndarray, face: Face) -> bytes:
        """A JPEG with context around the face, so any model can re-detect and re-align in it later."""
        ...
