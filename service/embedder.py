"""Face crops -> L2-normalised embeddings, behind one interface keyed by model id.

Each model id names weights *and* the alignment they were trained with, so an embedder both cuts its crop
from the image and embeds it (InsightFace's shape: a face record flows through ``get``). The model id travels
with every stored embedding: vectors of different models are not comparable.

Model ids:

* ``facenet-casia-20180408``: FaceNet (512-d), 160 px box crop with margin, ONNX Runtime.
* ``sface``: OpenCV Zoo's SFace int8 (128-d), 112 px similarity-aligned to the ArcFace 5-point template, cv2.dnn.
* ``dlib``: dlib's ResNet (128-d), dlib's 5-point shape on the detector's box and its 150 px face chip; the
  network itself is converted to ONNX (``dlib_resnet``) and run by ONNX Runtime, 20x faster than dlib.
* a fusion ``A:wA+B:wB``: each part L2-normalised and scaled by sqrt(weight / sum of weights), concatenated:
  one vector whose cosine is exactly the weighted mean of the parts' cosines. The weights are part of the id,
  so vectors made with other weights are never mixed with these.
* extra FaceNet ids from facenet-pytorch state dicts (``facenet_state_dicts`` in the config).
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

import cv2
import numpy as np

from .config import Settings
from .dlib_resnet import DLIB_DIM, DLIB_INPUT
from .errors import ConfigError
from .faces import Face, crop_face
from .models import (DLIB_RESNET, DLIB_SHAPE_5, FACENET_CASIA, FACENET_DIM, FACENET_INPUT, SFACE_INT8,
                     DlibResNetSource, FaceNetSource, OnnxSource, PreparedModel, facenet_graph_path, packaged_file,
                     prepare_onnx, verify_prepared)


class Embedder(Protocol):
    model_id: str
    dim: int

    def prepare(self) -> "Embedder": ...

    @property
    def ready(self) -> bool: ...

    def align(self, rgb: np.ndarray, face: Face) -> Any: ...

    def embed(self, crops: Sequence[Any]) -> np.ndarray: ...

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class _SingleModel:
    """What every single-network embedder shares: flip test-time augmentation (each view normalised, summed,
    renormalised) around a model-specific ``_forward`` of aligned uint8 RGB crops."""

    model_id: str
    dim: int
    flip: bool

    def prepare(self):  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def ready(self) -> bool:  # pragma: no cover - overridden
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


class FaceNetEmbedder(_SingleModel):
    """Inception-ResNet-v1 FaceNet on ONNX Runtime: 160 px crops, fixed standardisation (x - 127.5) / 128."""

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
        self._session = None

    def prepare(self) -> "FaceNetEmbedder":
        self.prepared, self._session = onnx_session(self.source, self.models_dir, self.threads)
        return self

    @property
    def ready(self) -> bool:
        return self._session is not None

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return crop_face(rgb, face.box, self.input_size, self.margin)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = (np.stack(crops).astype(np.float32) - 127.5) / 128.0
        return self._session.run(None, {"input": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]


# ArcFace's 5-point template for a 112x112 crop: eyes, nose, mouth corners, as seen in the image.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def similarity_align(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face so its 5 landmarks land on the ArcFace template (rotation, scale, shift only)."""
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    dst = ARCFACE_TEMPLATE * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None or not np.all(np.isfinite(matrix)):  # degenerate landmarks: least squares fallback
        matrix = cv2.estimateAffinePartial2D(src, dst, method=0)[0]
    if matrix is None:
        matrix = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class SFaceEmbedder(_SingleModel):
    """SFace int8 on OpenCV's dnn (this int8 file does not load in ONNX Runtime: its weights are graph
    inputs). cv2.dnn nets are not thread-safe, so each thread gets its own (about 10 MB)."""

    def __init__(self, *, flip: bool = True, path: Path | None = None) -> None:
        self.model_id, self.dim, self.flip = "sface", 128, flip
        self._path_override = path
        self.path: Path | None = None
        self._local = threading.local()

    def prepare(self) -> "SFaceEmbedder":
        self.path = packaged_file(SFACE_INT8, self._path_override)
        self._net()
        return self

    @property
    def ready(self) -> bool:
        return self.path is not None

    def _net(self):
        net = getattr(self._local, "net", None)
        if net is None:
            net = self._local.net = cv2.dnn.readNetFromONNX(str(self.path))
        return net

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return similarity_align(rgb, face.landmarks, 112)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        net = self._net()
        out = []
        for crop in crops:  # the int8 graph has a fixed batch of one
            blob = cv2.dnn.blobFromImage(np.ascontiguousarray(crop[:, :, ::-1]), 1.0, (112, 112), (0, 0, 0),
                                         swapRB=False, crop=False)  # SFace wants BGR 0..255
            net.setInput(blob, "data")
            out.append(net.forward().reshape(-1))
        return np.stack(out)


class DlibEmbedder(_SingleModel):
    """dlib's ResNet: dlib's 5-point shape predictor run inside the detector's box, then dlib's own 150 px
    face chip (padding 0.25), as the model was trained. The network runs as ONNX (same vectors as dlib's
    own inference to ~3e-7, about 20x faster); dlib does only the landmarks and the chip, per thread."""

    def __init__(self, models_dir: Path, *, threads: int = 0, flip: bool = True, shape_path: Path | None = None,
                 resnet_path: Path | None = None) -> None:
        self.model_id, self.dim, self.flip = "dlib", DLIB_DIM, flip
        self.models_dir, self.threads = models_dir, threads
        self._overrides = (shape_path, resnet_path)
        self.shape_path: Path | None = None
        self.prepared: PreparedModel | None = None
        self._session = None
        self._local = threading.local()

    def prepare(self) -> "DlibEmbedder":
        shape_path = packaged_file(DLIB_SHAPE_5, self._overrides[0])
        source = DlibResNetSource(self.model_id, packaged_file(DLIB_RESNET, self._overrides[1]))
        self.prepared, self._session = onnx_session(source, self.models_dir, self.threads)
        self.shape_path = shape_path
        return self

    @property
    def ready(self) -> bool:
        return self._session is not None

    def _shape_predictor(self):
        predictor = getattr(self._local, "predictor", None)
        if predictor is None:
            import dlib
            predictor = self._local.predictor = dlib.shape_predictor(str(self.shape_path))
        return predictor

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        import dlib
        if not self.ready:
            self.prepare()
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        shape = self._shape_predictor()(rgb, dlib.rectangle(x1, y1, x2, y2))
        return np.asarray(dlib.get_face_chip(rgb, shape, size=DLIB_INPUT, padding=0.25))

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)  # RGB 0..255, normalised in-graph
        return self._session.run(None, {"input": np.ascontiguousarray(batch)})[0]


class FusionEmbedder:
    """Several models as one: part i contributes sqrt(w_i) * its unit vector, so
    cos(fused_a, fused_b) = sum_i w_i * cos_i(a, b) with the weights summing to one."""

    def __init__(self, parts: Sequence[tuple[Any, float]]) -> None:
        total = sum(w for _, w in parts)
        self.parts = [(e, w / total) for e, w in parts]
        self.model_id = fusion_id([(e.model_id, w) for e, w in self.parts])
        self.dim = sum(e.dim for e, _ in self.parts)

    def prepare(self) -> "FusionEmbedder":
        for part, _ in self.parts:
            part.prepare()
        return self

    @property
    def ready(self) -> bool:
        return all(part.ready for part, _ in self.parts)

    def align(self, rgb: np.ndarray, face: Face) -> tuple:
        return tuple(part.align(rgb, face) for part, _ in self.parts)

    def embed(self, crops: Sequence[tuple]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        pieces = [math.sqrt(w) * part.embed([c[i] for c in crops]) for i, (part, w) in enumerate(self.parts)]
        return l2_normalize(np.concatenate(pieces, axis=1).astype(np.float32))

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])


def fusion_id(parts: Sequence[tuple[str, float]]) -> str:
    """Canonical id of a fusion: parts in the given order, weights normalised, 2 decimals."""
    total = sum(w for _, w in parts)
    return "+".join(f"{model_id}:{w / total:.2f}" for model_id, w in parts)


def parse_fusion(model_id: str) -> list[tuple[str, float]] | None:
    """``[(part, weight), ...]`` for a fusion id, None for a single model id."""
    if "+" not in model_id:
        return None
    parts = []
    for item in model_id.split("+"):
        name, _, weight = item.rpartition(":")
        try:
            w = float(weight)
        except ValueError:
            raise ConfigError(f"fusion part {item!r} needs a weight, e.g. sface:0.6+dlib:0.4",
                              details={"key": "model"}) from None
        if not name or w <= 0:
            raise ConfigError(f"invalid fusion part {item!r}", details={"key": "model"})
        parts.append((name, w))
    if len({name for name, _ in parts}) != len(parts):
        raise ConfigError(f"a fusion names a model twice: {model_id}", details={"key": "model"})
    return parts


def facenet_sources(settings: Settings) -> dict[str, FaceNetSource]:
    sources = {FACENET_CASIA: FaceNetSource(FACENET_CASIA, facenet_graph_path(), "tf_graph")}
    for model_id, path in settings.facenet_state_dicts.items():
        if model_id in sources or model_id in ("sface", "dlib"):
            raise ConfigError(f"model id {model_id} is built in", details={"key": "facenet_state_dicts"})
        sources[model_id] = FaceNetSource(model_id, Path(path).expanduser(), "state_dict")
    return sources


def available_models(settings: Settings) -> list[str]:
    """Single model ids; any weighted combination of them is a valid fusion id too."""
    return sorted(facenet_sources(settings)) + ["dlib", "sface"]


def create_embedder(settings: Settings, model_id: str | None = None) -> Embedder:
    """The embedder for ``model_id`` (default: the configured model), not yet prepared."""
    model_id = model_id or settings.model
    fusion = parse_fusion(model_id)
    if fusion is not None:
        return FusionEmbedder([(create_embedder(settings, name), w) for name, w in fusion])
    if model_id == "sface":
        return SFaceEmbedder(flip=settings.flip_tta)
    if model_id == "dlib":
        return DlibEmbedder(settings.models_dir, threads=settings.embed_threads, flip=settings.flip_tta)
    sources = facenet_sources(settings)
    if model_id not in sources:
        raise ConfigError(f"unknown model id {model_id!r}; available: {', '.join(available_models(settings))} "
                          f"or a fusion like sface:0.6+dlib:0.4", details={"key": "model"})
    return FaceNetEmbedder(sources[model_id], settings.models_dir, threads=settings.embed_threads,
                           flip=settings.flip_tta, margin=settings.face_margin)
