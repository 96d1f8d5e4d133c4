"""MTCNN's three networks from the weights facenet-pytorch ships (``facenet_pytorch/data/{p,r,o}net.pt``),
written as ONNX graphs once at preparation time, so the service detects faces with OpenVINO (``vision.runtime``).

No torch at any point: the state dicts are read by ``torch_pickle`` (an allow-listed unpickler) and each graph
states facenet-pytorch's layers directly (``PNet``/``RNet``/``ONet`` in ``facenet_pytorch/models/mtcnn.py``),
the same operators its torch export used; ``tests/test_mtcnn_graphs.py`` compares both where torch is installed.

Each graph takes RGB pixels 0..255 (NCHW float32) and does MTCNN's ``(x - 127.5) / 128`` itself.
P-Net is fully convolutional: its graph has free height and width (one run per pyramid scale). R-Net (24 px)
and O-Net (48 px) take a batch of candidate crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from .onnx_graph import GraphBuilder, save_model
from .packaged import MTCNN_ONET, MTCNN_PNET, MTCNN_RNET, PackagedFile
from .torch_pickle import load_state_dict

# Network -> (its weights file, input side, output names in the module's order).
NETS: dict[str, tuple[PackagedFile, int, tuple[str, ...]]] = {
    "pnet": (MTCNN_PNET, 12, ("reg", "prob")),
    "rnet": (MTCNN_RNET, 24, ("reg", "prob")),
    "onet": (MTCNN_ONET, 48, ("reg", "landmarks", "prob")),
}
# Per network: (conv layer, max pool after its PReLU as (kernel, stride), or None), in order.
_CONVS: dict[str, list[tuple[str, tuple[int, int] | None]]] = {
    "pnet": [("1", (2, 2)), ("2", None), ("3", None)],
    "rnet": [("1", (3, 2)), ("2", (3, 2)), ("3", None)],
    "onet": [("1", (3, 2)), ("2", (3, 2)), ("3", (2, 2)), ("4", None)],
}
# Per network: its hidden dense layer and heads (output name -> layer; softmax on "prob").
_DENSE: dict[str, tuple[str, dict[str, str]]] = {
    "rnet": ("dense4", {"reg": "dense5_2", "prob": "dense5_1"}),
    "onet": ("dense5", {"reg": "dense6_2", "landmarks": "dense6_3", "prob": "dense6_1"}),
}


def build_mtcnn_net(net: str, state: dict[str, np.ndarray]) -> Any:
    """The ONNX model of facenet-pytorch's ``net`` holding ``state``'s weights."""
    g = GraphBuilder(f"mtcnn-{net}")
    try:
        x = g.op("Mul", g.op("Sub", "input", g.const(127.5)), g.const(0.0078125))
        for layer, pool in _CONVS[net]:
            x = g.conv(x, state[f"conv{layer}.weight"], state[f"conv{layer}.bias"])
            x = g.prelu(x, state[f"prelu{layer}.weight"], spatial=True)
            if pool is not None:
                x = g.op("MaxPool", x, kernel_shape=[pool[0]] * 2, strides=[pool[1]] * 2, ceil_mode=1)
        if net == "pnet":
            heads = {"reg": g.conv(x, state["conv4_2.weight"], state["conv4_2.bias"]),
                     "prob": g.op("Softmax", g.conv(x, state["conv4_1.weight"], state["conv4_1.bias"]), axis=1)}
        else:
            hidden, outputs = _DENSE[net]
            # facenet-pytorch flattens in (N, W, H, C) order: permute(0, 3, 2, 1) before view.
            x = g.op("Flatten", g.op("Transpose", x, perm=[0, 3, 2, 1]), axis=1)
            x = g.prelu(g.linear(x, state[f"{hidden}.weight"], state[f"{hidden}.bias"]),
                        state[f"prelu{hidden[-1]}.weight"], spatial=False)
            heads = {name: g.linear(x, state[f"{layer}.weight"], state[f"{layer}.bias"])
                     for name, layer in outputs.items()}
            heads["prob"] = g.op("Softmax", heads["prob"], axis=1)
    except KeyError as exc:
        raise ModelError(f"MTCNN {net} weights lack {exc}") from exc
    side = NETS[net][1]
    if net == "pnet":
        shape: list[Any] = ["batch", 3, "height", "width"]
        out_shape = lambda c: ["batch", c, "out_height", "out_width"]  # noqa: E731
    else:
        shape = ["batch", 3, side, side]
        out_shape = lambda c: ["batch", c]  # noqa: E731
    channels = {"reg": 4, "prob": 2, "landmarks": 10}
    return g.model([("input", shape)], [(heads[name], name, out_shape(channels[name])) for name in NETS[net][2]])


@dataclass(frozen=True)
class MtcnnNetSource:
    """One of MTCNN's networks (``net`` = pnet, rnet or onet) from its checksum-pinned state dict."""
    net: str
    path: Path
    dim: int = 0  # not an embedder; kept for the cache manifest

    @property
    def model_id(self) -> str:
        return f"mtcnn-{self.net}"

    @property
    def input_size(self) -> int:
        return NETS[self.net][1]

    def build(self) -> Any:
        return build_mtcnn_net(self.net, load_state_dict(self.path))

    def export(self, model: Any, path: Path) -> None:
        save_model(model, path)
