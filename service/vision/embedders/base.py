"""What every single-network embedder shares: flip test-time augmentation around a model-specific forward
pass, and ONNX Runtime sessions on the prepared, checksummed weights."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...core.records import Face
from ...core.vectors import l2_normalize
from ..weights.cache import OnnxSource, PreparedModel, prepare_onnx, verify_prepared


class SingleModel:
    """Each face and its mirror image embedded, each view normalised, summed and renormalised (measured on
    LFW and celeba_dev: it raises TAR for every model). Subclasses give ``align`` and ``_forward``."""

    model_id: str
    dim: int
    flip: bool

    def prepare(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        if not self.ready:
            self.prepare()
        views = list(crops) + ([np.ascontiguousarray(c[:, ::-1]) for c in crops] if self.flip else [])
        out = l2_normalize(self._forward(views).astype(np.float32))
        if self.flip:
            out = out[:len(crops)] + out[len(crops):]
        return l2_normalize(out)

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])


class PerThread:
    """One instance per thread of something that is not thread-safe (cv2.dnn nets, dlib predictors),
    made on first use in each thread."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> Any:
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._factory()
        return value


def onnx_session(source: OnnxSource, models_dir: Path, threads: int) -> tuple[PreparedModel, Any]:
    """The prepared (cached, checksummed) ONNX file for ``source`` and an ONNX Runtime session on it.
    ``InferenceSession.run`` is thread-safe, so one session serves every request thread."""
    import onnxruntime as ort

    prepared = prepare_onnx(source, models_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No busy-waiting after each run: ORT's spinning threads would steal the cores from whatever runs next
    # (measured: the FaceNet + SFace fusion took 46 ms per face with spinning, 31 ms without).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Load from the bytes we checksum, so the file cannot change between check and load.
    data = prepared.path.read_bytes()
    verify_prepared(prepared)
    return prepared, ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
