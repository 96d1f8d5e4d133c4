"""Model id -> how to build its embedder. Adding a model is one file in this folder plus one entry in
``BUILT_IN`` (the README's model section shows an example).

A fusion id ``A:wA+B:wB`` is built from its parts; extra FaceNet ids come from the ``facenet_state_dicts``
setting. Everything else is refused with the list of what is available.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ...config import Recognition, Settings
from ...core.ports import Embedder
from ...core.vectors import parse_fusion
from ...errors import ConfigError
from ..weights.facenet import FACENET_CASIA, FACENET_DIM, FaceNetSource, facenet_graph_path
from .dlib import DlibEmbedder
from .facenet import FaceNetEmbedder
from .fusion import FusionEmbedder
from .sface import SFaceEmbedder


@dataclass(frozen=True)
class ModelSpec:
    dim: int
    build: Callable[[Path, Recognition], Embedder]  # (prepared models' folder, the recognition settings)


def _facenet(source: Callable[[], FaceNetSource]) -> ModelSpec:
    """FaceNet's weights are looked up when the embedder is built, not when the registry is listed: they are an
    optional extra, and a runtime without them must still list and serve every other model."""
    return ModelSpec(FACENET_DIM, lambda models, r: FaceNetEmbedder(source(), models, threads=r.embed_threads,
                                                                     flip=r.flip_tta, margin=r.face_margin))


BUILT_IN: dict[str, ModelSpec] = {
    "sface": ModelSpec(128, lambda models, r: SFaceEmbedder(models, threads=r.embed_threads, flip=r.flip_tta)),
    "dlib": ModelSpec(128, lambda models, r: DlibEmbedder(models, threads=r.embed_threads, flip=r.flip_tta)),
}


def registry(settings: Settings) -> dict[str, ModelSpec]:
    """Every single model id: the built-in ones, the packaged FaceNet, and the configured FaceNet files."""
    models = dict(BUILT_IN)
    models[FACENET_CASIA] = _facenet(lambda: FaceNetSource(FACENET_CASIA, facenet_graph_path(), "tf_graph"))
    for model_id, path in settings.recognition.facenet_state_dicts.items():
        if model_id in models:
            raise ConfigError(f"model id {model_id} is built in", details={"key": "facenet_state_dicts"})
        models[model_id] = _facenet(partial(FaceNetSource, model_id, Path(path).expanduser(), "state_dict"))
    return models


def available_models(settings: Settings) -> list[str]:
    """Single model ids; any weighted combination of them is a valid fusion id too."""
    return sorted(registry(settings))


def model_spec(settings: Settings, model_id: str) -> ModelSpec:
    models = registry(settings)
    if model_id not in models:
        raise ConfigError(f"unknown model id {model_id!r}; available: {', '.join(sorted(models))} "
                          f"or a fusion like sface:0.6+dlib:0.4", details={"key": "model"})
    return models[model_id]


def create_embedder(settings: Settings, model_id: str | None = None) -> Embedder:
    """The embedder for ``model_id`` (default: the configured model), not yet prepared."""
    model_id = model_id or settings.recognition.model
    fusion = parse_fusion(model_id)
    if fusion is not None:
        return FusionEmbedder([(create_embedder(settings, name), w) for name, w in fusion])
    return model_spec(settings, model_id).build(settings.models_dir, settings.recognition)


def embedding_dim(settings: Settings, model_id: str) -> int:
    """The vector size of ``model_id`` (a fusion's is the sum of its parts'), without building anything."""
    fusion = parse_fusion(model_id)
    if fusion is not None:
        return sum(model_spec(settings, name).dim for name, _ in fusion)
    return model_spec(settings, model_id).dim
