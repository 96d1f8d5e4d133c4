"""Offline model preparation: weights from installed packages -> cached, checksummed ONNX files.

Nothing here touches the network. A source (``mtcnn.MtcnnNetSource``, ``dlib_resnet.DlibResNetSource``,
``sface.SFaceFp32Source``) writes its ONNX graph straight from its packaged weights, without torch;
``facenet.FaceNetSource`` builds a torch module that is exported to ONNX (the optional FaceNet extra, the only
torch left). Each ONNX file is cached
in the data directory next to a manifest holding its checksum and the source's checksum: reused while both
match, rebuilt when the source changes, refused when tampered with.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ...errors import ModelError

log = logging.getLogger(__name__)

# Bump when the conversion code changes in a way that changes the exported file.
# 2: MTCNN and dlib written by onnx.helper instead of torch's exporter (same networks, different files).
CONVERTER_VERSION = 2


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


class OnnxSource(Protocol):
    """Packaged weights that become one ONNX file: ``build`` gives the model (an ONNX graph, or a torch module
    for FaceNet) that the source's ``export``, or ``export_onnx``, writes."""
    @property
    def model_id(self) -> str: ...

    @property
    def path(self) -> Path: ...

    @property
    def input_size(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def build(self) -> Any: ...


def export_with(source: OnnxSource) -> Callable[[Any, Path], None]:
    """The source's own ``export(model, path)`` when it has one (several outputs, free image size: MTCNN),
    else the single-input, single-output export with a free batch size that every embedder uses."""
    custom = getattr(source, "export", None)
    if callable(custom):
        return custom
    return lambda model, path: export_onnx(model, path, source.input_size)


def export_onnx(model: Any, path: Path, input_size: int) -> None:
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
        export_with(source)(model, Path(tmp))
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


def verified_bytes(model: PreparedModel) -> bytes:
    """The model file's bytes, read once and checked: a runtime loads exactly what was checksummed, and a file
    whose bytes are not the ones that were prepared is refused."""
    data = model.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise ModelError(f"checksum mismatch for {model.path}", details={"model_id": model.model_id})
    return data


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
