"""dlib's face-descriptor ResNet, read from its ``.dat`` file and written as an ONNX graph (no torch).

Why: dlib's own CPU inference (the ``dlib-bin`` wheel has no BLAS) spends ~60 ms on one 150 px chip; the same
network on OpenVINO takes ~3 ms and gives the same vector (max abs difference ~3e-7, tested against
dlib itself). That turns dlib from "too slow to fuse" into the cheapest model we have.

The file is dlib's binary serialisation of ``anet_type`` from ``dnn_face_recognition_ex.cpp``. Layers are
written input-first, each introduced by its length-prefixed name (``con_4``, ``affine_``, ...); parameter
tensors are little-endian float32 after a small header. We read only what inference needs and check the
layer sequence against the known architecture, so a different network is refused rather than misread.

Semantics mirrored from dlib: input ``(pixel - mean) / 256`` per RGB channel; ``affine_`` is per-channel
``gamma * x + beta`` (dlib's inference form of batch norm); a residual ``add_prev`` whose inputs differ in size
zero-pads both to the larger one (dlib's ``tt::add``), which happens where a stride-2 block meets its
average-pooled shortcut; the head is a global average pool and a bias-free 256->128 linear layer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from .onnx_graph import GraphBuilder, save_model

DLIB_INPUT = 150
DLIB_DIM = 128

_LAYER_NAMES = (b"input_rgb_image_sized", b"con_4", b"affine_", b"relu_", b"max_pool_2", b"avg_pool_2",
                b"add_prev_", b"fc_2", b"loss_metric_2")
# A serialised std::string: a one-byte packed length header (0x01), the length, the characters.
_LAYER_RE = re.compile(b"|".join(re.escape(b"\x01" + bytes([len(n)]) + n) for n in _LAYER_NAMES))


class _Reader:
    """dlib's packed integers (a header byte: count of little-endian bytes, 0x80 = negative), its floats
    (packed mantissa and exponent) and its tensors (version 2, four packed dims, raw float32)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def int(self) -> int:
        header = self.data[self.pos]
        size = header & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if header & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        return mantissa * 2.0 ** self.int()

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ModelError("unsupported dlib tensor version")
        count = int(np.prod([self.int() for _ in range(4)]))
        if self.pos + 4 * count > len(self.data):
            raise ModelError("truncated dlib model file")
        values = np.frombuffer(self.data, "<f4", count, self.pos).copy()
        self.pos += 4 * count
        return values

    def next_layer(self) -> str | None:
        match = _LAYER_RE.search(self.data, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()[2:].decode()


def read_layers(path: Path) -> list[tuple[str, dict]]:
    """``[(layer name, parameters), ...]`` input first, for the layers that carry anything inference needs."""
    reader = _Reader(path.read_bytes())
    layers: list[tuple[str, dict]] = []
    while (name := reader.next_layer()) is not None:
        params: dict = {}
        if name == "input_rgb_image_sized":
            params = {"mean": [reader.float() for _ in range(3)], "size": (reader.int(), reader.int())}
        elif name == "con_4":
            flat = reader.tensor()
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(7))
            n_weights = flat.size - filters
            channels = n_weights // (filters * rows * cols)
            if channels * filters * rows * cols != n_weights:
                raise ModelError("dlib conv layer has an unexpected parameter count")
            params = {"weight": flat[:n_weights].reshape(filters, channels, rows, cols),
                      "bias": flat[n_weights:], "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)}
        elif name == "affine_":
            flat = reader.tensor()
            params = {"gamma": flat[:flat.size // 2], "beta": flat[flat.size // 2:]}
        elif name in ("max_pool_2", "avg_pool_2"):
            rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(6))
            params = {"size": (rows, cols), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)}
        elif name == "fc_2":
            outputs, inputs = reader.int(), reader.int()
            flat = reader.tensor()
            if flat.size != inputs * outputs:  # fc_no_bias: weights only, stored inputs x outputs
                raise ModelError("dlib fc layer has a bias or an unexpected size")
            params = {"weight": flat.reshape(inputs, outputs)}
        layers.append((name, params))
    return layers


_PLAIN_BLOCK = ["con_4", "affine_", "relu_", "con_4", "affine_", "add_prev_", "relu_"]
_DOWN_BLOCK = ["con_4", "affine_", "relu_", "con_4", "affine_", "avg_pool_2", "add_prev_", "relu_"]


def _conv_out(side: int, size: int, stride: int, pad: int) -> int:
    return (side + 2 * pad - size) // stride + 1


def build_dlib_resnet(path: Path) -> Any:
    """The ONNX model equivalent to dlib's face descriptor network in ``path``. Input: N x 3 x 150 x 150 RGB in
    0..255; output ``embedding``: the unnormalised 128-d descriptor dlib returns. Shapes are tracked while the
    graph is written (the input size is fixed), so dlib's size-mismatched residual adds become fixed pads."""
    layers = read_layers(path)
    names = [name for name, _ in layers]
    if names[:1] == ["loss_metric_2"]:
        layers, names = layers[1:], names[1:]
    if names[:5] != ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]:
        raise ModelError(f"not dlib's face descriptor network (starts {names[:5]})")
    source = layers[0][1]
    if tuple(source["size"]) != (DLIB_INPUT, DLIB_INPUT):
        raise ModelError(f"dlib network expects {source['size']} input, not {DLIB_INPUT}")

    g = GraphBuilder("dlib-resnet")
    shape = [3, DLIB_INPUT, DLIB_INPUT]  # C, H, W of the value being written

    def conv(x: str, p: dict[str, Any]) -> str:
        rows, cols = p["weight"].shape[2:]
        shape[:] = [p["weight"].shape[0], _conv_out(shape[1], rows, p["stride"][0], p["padding"][0]),
                    _conv_out(shape[2], cols, p["stride"][1], p["padding"][1])]
        return g.conv(x, p["weight"], p["bias"], p["stride"], p["padding"])

    def affine(x: str, p: dict[str, Any]) -> str:
        return g.op("Add", g.op("Mul", x, g.const(p["gamma"].reshape(-1, 1, 1))), g.const(p["beta"].reshape(-1, 1, 1)))

    def pool(op: str, x: str, p: dict[str, Any], dims: list[int]) -> tuple[str, list[int]]:
        (rows, cols), (sy, sx), (py, px) = p["size"], p["stride"], p["padding"]
        extra = {"count_include_pad": 1} if op == "AveragePool" else {}
        out = g.op(op, x, kernel_shape=[rows, cols], strides=[sy, sx], pads=[py, px, py, px], **extra)
        return out, [dims[0], _conv_out(dims[1], rows, sy, py), _conv_out(dims[2], cols, sx, px)]

    def pad_to(x: str, have: list[int], want: list[int]) -> str:
        if have == want:
            return x
        pads = [0, 0, 0, 0, 0, *(w - h for w, h in zip(want, have))]
        return g.op("Pad", x, g.const(pads, "pads", np.int64))

    def residual(x: str, ps: list[dict[str, Any]], down: dict[str, Any] | None) -> str:
        before = list(shape)
        y = affine(conv(g.op("Relu", affine(conv(x, ps[0]), ps[1])), ps[3]), ps[4])
        body = list(shape)
        shortcut, short = (x, before) if down is None else pool("AveragePool", x, down, before)
        dims = [max(a, b) for a, b in zip(body, short)]
        shape[:] = dims
        return g.op("Relu", g.op("Add", pad_to(y, body, dims), pad_to(shortcut, short, dims)))

    x = g.op("Div", g.op("Sub", "input", g.const(np.asarray(source["mean"]).reshape(1, 3, 1, 1))), g.const(256.0))
    x = g.op("Relu", affine(conv(x, layers[1][1]), layers[2][1]))
    x, pooled = pool("MaxPool", x, layers[4][1], shape)
    shape[:] = pooled
    rest = layers[5:]
    while rest and rest[0][0] == "con_4":
        kinds = [name for name, _ in rest]
        if kinds[:7] == _PLAIN_BLOCK:
            x, rest = residual(x, [p for _, p in rest[:5]], None), rest[7:]
        elif kinds[:8] == _DOWN_BLOCK:
            x, rest = residual(x, [p for _, p in rest[:5]], rest[5][1]), rest[8:]
        else:
            raise ModelError(f"unexpected dlib layer sequence {kinds[:8]}")
    if [name for name, _ in rest] != ["avg_pool_2", "fc_2"] or rest[0][1]["size"] != (0, 0):
        raise ModelError("dlib network does not end in a global average pool and a linear layer")
    weight = rest[1][1]["weight"]  # inputs x outputs
    if weight.shape[1] != DLIB_DIM:
        raise ModelError(f"dlib network gives {weight.shape[1]}-d vectors, not {DLIB_DIM}")
    x = g.op("MatMul", g.op("Flatten", g.op("GlobalAveragePool", x), axis=1), g.const(weight, "fc"))
    return g.model([("input", ["batch", 3, DLIB_INPUT, DLIB_INPUT])], [(x, "embedding", ["batch", DLIB_DIM])])


@dataclass(frozen=True)
class DlibResNetSource:
    """dlib's face descriptor network from its packaged ``.dat`` (checksum-pinned before we get here)."""
    model_id: str
    path: Path
    input_size: int = DLIB_INPUT
    dim: int = DLIB_DIM

    def build(self) -> Any:
        return build_dlib_resnet(self.path)

    def export(self, model: Any, path: Path) -> None:
        save_model(model, path)

