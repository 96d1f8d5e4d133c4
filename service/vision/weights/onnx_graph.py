"""A few lines over ``onnx.helper`` for writing a small network straight from its weights arrays.

Why: preparing MTCNN and dlib used to build a torch module only to export it; writing the graph directly needs
nothing but the ``onnx`` package, so the runtime install carries no torch. Each builder states its network's
layers in the order the original framework runs them, and the tests compare the result with that framework.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8


class GraphBuilder:
    """Nodes and constants of one graph; every value gets a fresh name."""

    def __init__(self, name: str) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.name = name
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self._count = 0

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray | Sequence[float] | float, hint: str = "const",
              dtype: Any = np.float32) -> str:
        name = self._fresh(hint)
        self.constants.append(self._numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        """Add one node; its output name, or the list of them when ``outputs`` > 1."""
        names = [self._fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray, stride: Sequence[int] = (1, 1),
             padding: Sequence[int] = (0, 0)) -> str:
        """torch's ``Conv2d`` / dlib's ``con_``: OIHW weights, symmetric padding."""
        return self.op("Conv", x, self.const(weight, "w"), self.const(bias, "b"), kernel_shape=list(weight.shape[2:]),
                       strides=list(stride), pads=[padding[0], padding[1], padding[0], padding[1]])

    def prelu(self, x: str, slope: np.ndarray, spatial: bool) -> str:
        """torch's ``PReLU(C)``: one slope per channel, broadcast over H and W when ``spatial``."""
        return self.op("PRelu", x, self.const(slope.reshape(-1, 1, 1) if spatial else slope, "slope"))

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray) -> str:
        """torch's ``Linear``: ``x @ weight.T + bias``."""
        return self.op("Gemm", x, self.const(weight, "w"), self.const(bias, "b"), transB=1)

    def model(self, inputs: list[tuple[str, list[Any]]], outputs: list[tuple[str, str, list[Any]]]) -> Any:
        """The checked model: ``inputs`` as (name, shape), ``outputs`` as (value, public name, shape)."""
        import onnx

        helper, float_type = self._helper, onnx.TensorProto.FLOAT
        for value, public, _ in outputs:
            self.nodes.append(helper.make_node("Identity", [value], [public]))
        graph = helper.make_graph(
            self.nodes, self.name, [helper.make_tensor_value_info(n, float_type, s) for n, s in inputs],
            [helper.make_tensor_value_info(public, float_type, s) for _, public, s in outputs], self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="faceid")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def save_model(model: Any, path: Path) -> None:
    """The ``export`` step of a source whose ``build`` already gives an ONNX model."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
