"""dlib's face-descriptor ResNet, read from its ``.dat`` file into torch, so it can be exported to ONNX.

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


def build_dlib_resnet(path: Path) -> Any:
    """The torch module (eval mode) equivalent to dlib's face descriptor network in ``path``. Input: N x 3 x
    150 x 150 RGB in 0..255; output: the unnormalised 128-d descriptor dlib returns."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def conv(p: dict[str, Any]) -> Any:
        out_c, in_c, rows, cols = p["weight"].shape
        layer = nn.Conv2d(in_c, out_c, (rows, cols), stride=p["stride"], padding=p["padding"])
        layer.weight.data = torch.from_numpy(p["weight"])
        layer.bias.data = torch.from_numpy(p["bias"])
        return layer

    class Affine(nn.Module):
        def __init__(self, p: dict[str, Any]) -> None:
            super().__init__()
            self.register_buffer("gamma", torch.from_numpy(p["gamma"]).view(1, -1, 1, 1))
            self.register_buffer("beta", torch.from_numpy(p["beta"]).view(1, -1, 1, 1))

        def forward(self, x: Any) -> Any:
            return x * self.gamma + self.beta

    def pad_to(x: Any, channels: int, rows: int, cols: int) -> Any:
        return F.pad(x, (0, cols - x.shape[3], 0, rows - x.shape[2], 0, channels - x.shape[1]))

    class Residual(nn.Module):
        def __init__(self, ps: list[dict], pool: dict | None) -> None:
            super().__init__()
            self.body = nn.Sequential(conv(ps[0]), Affine(ps[1]), nn.ReLU(), conv(ps[3]), Affine(ps[4]))
            self.pool = nn.AvgPool2d(pool["size"], pool["stride"], pool["padding"]) if pool else None

        def forward(self, x: Any) -> Any:
            y = self.body(x)
            shortcut = x if self.pool is None else self.pool(x)
            dims = [max(a, b) for a, b in zip(y.shape[1:], shortcut.shape[1:])]
            return F.relu(pad_to(y, *dims) + pad_to(shortcut, *dims))

    class DlibResNet(nn.Module):
        def __init__(self, layers: list[tuple[str, dict]]) -> None:
            super().__init__()
            names = [name for name, _ in layers]
            if names[:1] == ["loss_metric_2"]:
                layers, names = layers[1:], names[1:]
            if names[:5] != ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]:
                raise ModelError(f"not dlib's face descriptor network (starts {names[:5]})")
            source = layers[0][1]
            if tuple(source["size"]) != (DLIB_INPUT, DLIB_INPUT):
                raise ModelError(f"dlib network expects {source['size']} input, not {DLIB_INPUT}")
            self.register_buffer("mean", torch.tensor(source["mean"], dtype=torch.float32).view(1, 3, 1, 1))
            pool = layers[4][1]
            self.stem = nn.Sequential(conv(layers[1][1]), Affine(layers[2][1]), nn.ReLU(),
                                      nn.MaxPool2d(pool["size"], pool["stride"], pool["padding"]))
            rest, blocks = layers[5:], []
            while rest and rest[0][0] == "con_4":
                kinds = [name for name, _ in rest]
                if kinds[:7] == _PLAIN_BLOCK:
                    blocks.append(Residual([p for _, p in rest[:5]], None))
                    rest = rest[7:]
                elif kinds[:8] == _DOWN_BLOCK:
                    blocks.append(Residual([p for _, p in rest[:5]], rest[5][1]))
                    rest = rest[8:]
                else:
                    raise ModelError(f"unexpected dlib layer sequence {kinds[:8]}")
            if [name for name, _ in rest] != ["avg_pool_2", "fc_2"] or rest[0][1]["size"] != (0, 0):
                raise ModelError("dlib network does not end in a global average pool and a linear layer")
            self.blocks = nn.Sequential(*blocks)
            weight = rest[1][1]["weight"]
            self.head = nn.Linear(weight.shape[0], weight.shape[1], bias=False)
            self.head.weight.data = torch.from_numpy(np.ascontiguousarray(weight.T))
            if self.head.out_features != DLIB_DIM:
                raise ModelError(f"dlib network gives {self.head.out_features}-d vectors, not {DLIB_DIM}")

        def forward(self, x: Any) -> Any:
            x = self.blocks(self.stem((x - self.mean) / 256.0))
            return self.head(x.mean(dim=(2, 3)))

    return DlibResNet(read_layers(path)).eval()


@dataclass(frozen=True)
class DlibResNetSource:
    """dlib's face descriptor network from its packaged ``.dat`` (checksum-pinned before we get here)."""
    model_id: str
    path: Path
    input_size: int = DLIB_INPUT
    dim: int = DLIB_DIM

    def build(self) -> Any:
        return build_dlib_resnet(self.path)

