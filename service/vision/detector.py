"""Face detection: MTCNN (facenet-pytorch's weights, exported to ONNX at preparation; ``mtcnn`` runs it on
``runtime``).

MTCNN's cost grows with the pixel count, while a face that is recognisable at all is still found on a
640 px copy, so detection runs on a downscaled copy and boxes and landmarks are mapped back to the full image.
Crops are then cut from the full-resolution image (``align``), so a large phone photo keeps its detail.

Verify and identify need only the main face of a photo (``main_face=True``): the search then starts at a
minimum face size proportional to the image (``probe_face_ratio`` of its shorter side), which skips the
pyramid's largest and costliest scales, and falls back to the full search when that finds nothing.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.records import Face
from .mtcnn import Found, Mtcnn
from .runtime import Network, load_network
from .weights.mtcnn import NETS, MtcnnNetSource
from .weights.packaged import packaged_file

# A search for faces of at least ``min_size`` starts at windows this much smaller: a face is found at the
# scale whose window is about its size, and the box regressed from it may come out a little larger or smaller.
MIN_SIZE_MARGIN = 0.75


class FaceDetector:
    """MTCNN on a size-capped copy of the image."""

    def __init__(self, models_dir: Path, *, max_side: int = 640, min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), threads: int = 0,
                 probe_face_ratio: float = 0.0) -> None:
        self.models_dir = models_dir
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.threads = threads
        self.probe_face_ratio = probe_face_ratio
        self._mtcnn: Mtcnn | None = None

    def prepare(self) -> FaceDetector:
        """The three networks' cached ONNX files (converted on first use, checksummed), compiled."""
        networks: dict[str, Network] = {}
        for net, (weights, _, _) in NETS.items():
            source = MtcnnNetSource(net, packaged_file(weights))
            networks[net] = load_network(source, self.models_dir, self.threads)[1]
        self._mtcnn = Mtcnn(networks["pnet"], networks["rnet"], networks["onet"], self.thresholds)
        return self

    @property
    def ready(self) -> bool:
        return self._mtcnn is not None

    def detect(self, rgb: np.ndarray, *, main_face: bool = False, min_size: float = 0.0) -> list[Face]:
        """Every face in ``rgb``, largest first; with ``main_face``, the faces of the reduced search (see
        module), of which the caller uses the first; with ``min_size`` (enrollment: the quality gate's face
        size), the search starts at faces a little smaller than that, and is the full one if that finds
        nothing."""
        mtcnn = self._mtcnn if self._mtcnn is not None else self.prepare()._mtcnn
        if mtcnn is None:  # pragma: no cover - prepare sets it or raises
            return []
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < 12:  # below MTCNN's smallest window: nothing to find
            return []
        found = Found.none()
        start = self.probe_face_ratio * min(small.shape[:2]) if main_face else 0.0
        start = max(start, MIN_SIZE_MARGIN * min_size * scale)
        if start > self.min_face_size:
            found = mtcnn.detect(small, self.min_face_size, start_face=start)
        if not len(found.scores):
            found = mtcnn.detect(small, self.min_face_size)
        faces = [Face(box=np.asarray(b, np.float64) / scale, landmarks=np.asarray(p, np.float64) / scale,
                      probability=float(pr))
                 for b, pr, p in zip(found.boxes, found.scores, found.points)]
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces
