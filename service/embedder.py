"""Face crops -> L2-normalised embeddings, behind one interface keyed by model id.

Each model id names weights *and* the alignment they were trained with, so an embedder both cuts its crop
from the image and embeds it (InsightFace's shape: a face record flows through ``get``). The model id travels
with every stored embedding: vectors of different models are not comparable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .config import Settings
from .errors import ConfigError
from .faces import Face, crop_face
from .models import (FACENET_CASIA, FACENET_DIM, FACENET_INPUT, FaceNetSource, PreparedModel,
                     facenet_graph_path, prepare_facenet, verify_prepared)


class Embedder(Protocol):
    model_id: str
    dim: int

    def prepare(self) -> "Embedder": ...

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray: ...

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class FaceNetEmbedder:
    """Inception-ResNet-v1 FaceNet on ONNX Runtime: 160 px crops, fixed standardisation (x - 127.5) / 128.

    ``InferenceSession.run`` is thread-safe, so one instance serves every request thread.
    """

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
        import onnxruntime as ort

        self.prepared = prepare_facenet(self.source, self.models_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Load from the bytes we checksum, so the file cannot change between check and load.
        data = self.prepared.path.read_bytes()
        verify_prepared(self.prepared)
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return self

    @property
    def ready(self) -> bool:
        return self._session is not None

    def align(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return crop_face(rgb, face.box, self.input_size, self.margin)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        if self._session is None:
            self.prepare()
        batch = np.stack(crops).astype(np.float32)
        if self.flip:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        batch = (batch - 127.5) / 128.0
        out = self._session.run(None, {"input": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]
        if self.flip:
            n = len(crops)
            out = out[:n] + out[n:]
        return l2_normalize(out.astype(np.float32))

    def get(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.embed([self.align(rgb, f) for f in faces])


def facenet_sources(settings: Settings) -> dict[str, FaceNetSource]:
    sources = {FACENET_CASIA: FaceNetSource(FACENET_CASIA, facenet_graph_path(), "tf_graph")}
    for model_id, path in settings.facenet_state_dicts.items():
        if model_id in sources:
            raise ConfigError(f"model id {model_id} is built in", details={"key": "facenet_state_dicts"})
        sources[model_id] = FaceNetSource(model_id, Path(path).expanduser(), "state_dict")
    return sources


def available_models(settings: Settings) -> list[str]:
    return sorted(facenet_sources(settings))


def create_embedder(settings: Settings, model_id: str | None = None) -> Embedder:
    """The embedder for ``model_id`` (default: the configured model), not yet prepared."""
    model_id = model_id or settings.model
    sources = facenet_sources(settings)
    if model_id not in sources:
        raise ConfigError(f"unknown model id {model_id!r}; available: {', '.join(sorted(sources))}",
                          details={"key": "model"})
    return FaceNetEmbedder(sources[model_id], settings.models_dir, threads=settings.embed_threads,
                           flip=settings.flip_tta, margin=settings.face_margin)
