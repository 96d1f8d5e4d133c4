"""Several models as one (``A:wA+B:wB``): the parts' vectors fused by ``core.vectors.fuse``, so the cosine
of two fused vectors is exactly the weighted mean of the parts' cosines. The weights are part of the id, so
vectors made with other weights are never mixed with these."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.ports import Embedder
from ...core.records import Face
from ...core.vectors import fuse, fusion_id


class FusionEmbedder:
    def __init__(self, parts: Sequence[tuple[Embedder, float]]) -> None:
        total = sum(w for _, w in parts)
        self.parts = [(e, w / total) for e, w in parts]
        self.model_id = fusion_id([(e.model_id, w) for e, w in self.parts])
        self.dim = sum(e.dim for e, _ in self.parts)

    def prepare(self) -> FusionEmbedder:
        for part, _ in self.parts:
            part.prepare()
        return self

    @property
    def ready(self) -> bool:
        return all(part.ready for part, _ in self.parts)

    def align(self, rgb: np.ndarray, face: Face) -> tuple[Any, ...]:
        return tuple(part.align(rgb, face) for part, _ in self.parts)

    def embed(self, crops: Sequence[tuple[Any, ...]]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        return fuse([part.embed([c[i] for c in crops]) for i, (part, _) in enumerate(self.parts)],
                    [w for _, w in self.parts])

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])
