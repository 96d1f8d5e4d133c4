"""What every single-network embedder shares: flip test-time augmentation around a model-specific forward
pass (the networks themselves run on ``vision.runtime``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.records import Face
from ...core.vectors import l2_normalize
from ...errors import ModelError
from ..runtime import Network


class SingleModel:
    """Each face and its mirror image embedded, each view normalised, summed and renormalised (measured on
    LFW and celeba_dev: it raises TAR for every model). Subclasses give ``prepare`` (which sets
    ``_network``), ``align`` and ``_forward``."""

    model_id: str
    dim: int
    flip: bool
    _network: Network | None = None

    def prepare(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return self._network is not None

    def network(self) -> Network:
        """The compiled network, loaded now if it was not yet."""
        if self._network is None:
            self.prepare()
        if self._network is None:  # pragma: no cover - prepare sets it or raises
            raise ModelError(f"{self.model_id} did not load")
        return self._network

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        views = list(crops) + ([np.ascontiguousarray(c[:, ::-1]) for c in crops] if self.flip else [])
        out = l2_normalize(self._forward(views).astype(np.float32))
        if self.flip:
            out = out[:len(crops)] + out[len(crops):]
        return l2_normalize(out)

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])
