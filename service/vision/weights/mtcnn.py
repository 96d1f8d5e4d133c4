"""MTCNN's three networks from the weights facenet-pytorch ships (``facenet_pytorch/data/{p,r,o}net.pt``),
exported to ONNX once at preparation time, so the service detects faces with OpenVINO (``vision.runtime``)
and never imports torch while it serves.

Each exported graph takes RGB pixels 0..255 (NCHW float32) and does MTCNN's ``(x - 127.5) / 128`` itself.
P-Net is fully convolutional: its graph has free height and width (one run per pyramid scale). R-Net (24 px)
and O-Net (48 px) take a batch of candidate crops.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .packaged import MTCNN_ONET, MTCNN_PNET, MTCNN_RNET, PackagedFile

# Network -> (its weights file, input side used for the export, output names in the module's order).
NETS: dict[str, tuple[PackagedFile, int, tuple[str, ...]]] = {
    "pnet": (MTCNN_PNET, 12, ("reg", "prob")),
    "rnet": (MTCNN_RNET, 24, ("reg", "prob")),
    "onet": (MTCNN_ONET, 48, ("reg", "landmarks", "prob")),
}


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
        import torch
        from facenet_pytorch.models import mtcnn as fp

        net = {"pnet": fp.PNet, "rnet": fp.RNet, "onet": fp.ONet}[self.net](pretrained=False)
        net.load_state_dict(torch.load(self.path, map_location="cpu", weights_only=True))

        class Normalised(torch.nn.Module):
            """The network behind MTCNN's fixed input scaling, so callers pass raw pixels."""

            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                return self.net((x - 127.5) * 0.0078125)

        return Normalised().eval()

    def export(self, model: Any, path: Path) -> None:
        import torch

        outputs = NETS[self.net][2]
        batch = {0: "batch"}
        spatial = {0: "batch", 2: "height", 3: "width"} if self.net == "pnet" else batch
        dynamic = {"input": spatial, **{name: spatial if self.net == "pnet" else batch for name in outputs}}
        dummy = torch.zeros(1, 3, self.input_size, self.input_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: see cache.export_onnx
            torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=list(outputs),
                              dynamic_axes=dynamic, opset_version=17, dynamo=False)
