"""MTCNN and dlib prepared without torch: the state-dict reader against ``torch.load``, the written graphs against
facenet-pytorch's modules and against the graphs torch's exporter made before, detections on every fixture photo,
and a preparation in a fresh interpreter where torch cannot be imported. The comparisons need torch (the test
environment has it); the runtime install does not."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from service.core.images import decode_image
from service.errors import ModelError
from service.vision.mtcnn import Mtcnn
from service.vision.runtime import load_network
from service.vision.weights.mtcnn import NETS, MtcnnNetSource
from service.vision.weights.packaged import packaged_file
from service.vision.weights.torch_pickle import load_state_dict

from .conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".jpg", ".png", ".webp", ".bmp"}
                and p.parent.name != "invalid")


def _torch_module(net: str) -> object:
    torch = pytest.importorskip("torch")
    from facenet_pytorch.models import mtcnn as fp

    module = {"pnet": fp.PNet, "rnet": fp.RNet, "onet": fp.ONet}[net](pretrained=False)
    module.load_state_dict(torch.load(packaged_file(NETS[net][0]), map_location="cpu", weights_only=True))
    return module.eval()


@pytest.mark.parametrize("net", sorted(NETS))
def test_reader_gives_torch_loads_tensors(net: str):
    torch = pytest.importorskip("torch")
    path = packaged_file(NETS[net][0])
    ours, theirs = load_state_dict(path), torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for name, tensor in theirs.items():
        assert ours[name].dtype == np.float32 and np.array_equal(ours[name], tensor.numpy()), name


def test_reader_reads_torchs_zip_format_with_views(tmp_path: Path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {"whole": base, "transposed": base.t(), "slice": base[1:3, 2:5], "ints": torch.tensor([7, -1])}
    torch.save(state, tmp_path / "state.pt")
    ours = load_state_dict(tmp_path / "state.pt")
    for name, tensor in state.items():
        assert np.array_equal(ours[name], tensor.numpy()), name


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_reader_refuses_a_pickle_that_calls_anything_else(tmp_path: Path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"w": _Payload()}))
    with pytest.raises(ModelError, match="posix.system|os.system"):
        load_state_dict(path)
    assert not (Path.cwd() / "pwned").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelError):
        load_state_dict(tmp_path / "junk.pt")


@pytest.mark.parametrize("net", sorted(NETS))
def test_graph_equals_facenet_pytorchs_module(net: str):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    module = _torch_module(net)
    source = MtcnnNetSource(net, packaged_file(NETS[net][0]))
    session = ort.InferenceSession(source.build().SerializeToString())
    side = NETS[net][1]
    shape = (3, 3, 41, 57) if net == "pnet" else (5, 3, side, side)
    x = np.random.default_rng(7).uniform(0, 255, shape).astype(np.float32)
    ours = session.run(None, {"input": x})
    with torch.no_grad():
        theirs = module((torch.from_numpy(x) - 127.5) * 0.0078125)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.numpy(), atol=2e-6)


class _TorchExported:
    """The previous preparation: facenet-pytorch's module exported by torch (kept here as the reference)."""

    def __init__(self, net: str) -> None:
        self.source = MtcnnNetSource(net, packaged_file(NETS[net][0]))
        self.model_id, self.path, self.dim = f"torch-{self.source.model_id}", self.source.path, 0
        self.input_size = self.source.input_size

    def build(self) -> object:
        torch = pytest.importorskip("torch")
        inner = _torch_module(self.source.net)

        class Normalised(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = inner

            def forward(self, x: object) -> object:
                return self.net((x - 127.5) * 0.0078125)
        return Normalised().eval()

    def export(self, model: object, path: Path) -> None:
        torch = pytest.importorskip("torch")
        outputs = NETS[self.source.net][2]
        spatial = {0: "batch", 2: "height", 3: "width"} if self.source.net == "pnet" else {0: "batch"}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (torch.zeros(1, 3, self.input_size, self.input_size),), str(path),
                              input_names=["input"], output_names=list(outputs),
                              dynamic_axes={name: spatial for name in ("input", *outputs)},
                              opset_version=17, dynamo=False)


def test_detections_identical_to_the_torch_exported_networks(tmp_path: Path, pipeline):
    pytest.importorskip("torch")
    ours = Mtcnn(*(load_network(MtcnnNetSource(n, packaged_file(NETS[n][0])), tmp_path, 1)[1]
                   for n in ("pnet", "rnet", "onet")), (0.6, 0.7, 0.7))
    torchs = Mtcnn(*(load_network(_TorchExported(n), tmp_path, 1)[1] for n in ("pnet", "rnet", "onet")),
                   (0.6, 0.7, 0.7))
    faces = 0
    for path in PHOTOS:
        rgb = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26, max_decoded_bytes=1 << 30)
        rgb = rgb[: 640, : 640]  # the detector's capped copy is at most this big; keep the test quick
        a, b = ours.detect(rgb, 20), torchs.detect(rgb, 20)
        assert len(a.scores) == len(b.scores), path
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3, err_msg=str(path))
        np.testing.assert_allclose(a.points, b.points, atol=1e-3, err_msg=str(path))
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5, err_msg=str(path))
        faces += len(a.scores)
    assert faces >= 25


BLOCK_TORCH = """
import sys
for name in ("torch", "torchvision", "tensorboard", "facenet_pytorch.models"):
    sys.modules[name] = None  # any import of these raises ImportError
from service.prepare import main
sys.exit(main())
"""


def test_prepare_needs_no_torch_and_writes_the_same_files(settings, pipeline, tmp_path: Path):
    """The default model and MTCNN prepared in an interpreter that cannot import torch give byte-identical files
    to the ones this (torch-holding) test session prepared."""
    env = {**os.environ, "FACEID_DATA_DIR": str(tmp_path), "FACEID_CONFIG": str(ROOT / "config" / "faceid.toml")}
    env.pop("FACEID_MODEL", None)
    out = subprocess.run([sys.executable, "-c", BLOCK_TORCH], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    written = sorted(p.name for p in (tmp_path / "models").glob("*.onnx"))
    assert {"mtcnn-pnet.onnx", "mtcnn-rnet.onnx", "mtcnn-onet.onnx", "dlib.onnx"} <= set(written)
    for name in written:
        mine = settings.models_dir / name
        if mine.is_file():
            assert (tmp_path / "models" / name).read_bytes() == mine.read_bytes(), name


def test_the_runtime_lock_holds_no_torch_cuda_or_test_tools():
    """What `make install` and the image install (requirements.lock, requirements-nodeps.lock): the runtime only."""
    import re

    names = {m.group(1).lower() for lock in ("requirements.lock", "requirements-nodeps.lock")
             for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", (ROOT / lock).read_text(), re.M)}
    assert {"openvino", "onnx", "chromadb", "gunicorn", "prometheus-client", "facenet-pytorch"} <= names
    banned = {n for n in names if re.match(r"(torch|torchvision|nvidia-|triton|pytest|mypy|ruff|playwright|"
                                           r"schemathesis|tensorboard)", n)}
    assert not banned, banned
