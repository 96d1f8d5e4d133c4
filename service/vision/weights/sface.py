"""SFace as a plain float32 ONNX graph, from OpenCV Zoo's int8 file (``packaged.SFACE_INT8``).

The int8 file quantises only the weights (block-wise ``DequantizeLinear`` feeding each Conv and the last Gemm);
every activation is float32, in cv2.dnn as here. Its weights are also graph inputs, which keeps a runtime
from folding them. Dequantising once at preparation gives the same network as plain constants: the same
vectors as cv2.dnn on the int8 file (tested), and a graph any runtime can optimise. No torch involved.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SFACE_DIM = 128
SFACE_INPUT = 112


def dequantise(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21), blocked along ``axis`` when ``block`` > 0."""
    if block:
        scale, zero = np.repeat(scale, block, axis=axis), np.repeat(zero, block, axis=axis)
    return ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)


@dataclass(frozen=True)
class SFaceFp32Source:
    """The int8 file at ``path`` -> the float32 graph: input ``data`` (N, 3, 112, 112) BGR 0..255."""
    path: Path
    model_id: str = "sface-fp32"
    dim: int = SFACE_DIM
    input_size: int = SFACE_INPUT

    def build(self) -> Any:
        import onnx
        from onnx import helper, numpy_helper

        model = onnx.load(str(self.path))
        graph = model.graph
        values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        nodes = []
        for node in graph.node:
            if node.op_type == "DequantizeLinear":
                attrs = {a.name: a.i for a in node.attribute}
                q, scale, zero = (values[name] for name in node.input)
                values[node.output[0]] = dequantise(q, scale, zero, attrs.get("axis", 1), attrs.get("block_size", 0))
            elif node.op_type == "Reshape" and node.input[0] in values:  # a dequantised weight's shape
                values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
            else:
                nodes.append(node)
        used = {name for node in nodes for name in node.input}
        constants = [numpy_helper.from_array(values[name], name) for name in sorted(used) if name in values]
        inputs = [i for i in graph.input if i.name == "data"]
        for tensor in [*inputs, *graph.output]:  # any batch size: a face and its mirror run as one batch
            tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
        out = helper.make_model(helper.make_graph(nodes, graph.name, inputs, list(graph.output), constants),
                                opset_imports=[helper.make_opsetid("", 17)])
        out.ir_version = 8
        onnx.checker.check_model(out)
        return out

    def export(self, model: Any, path: Path) -> None:
        import onnx

        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
