"""The ONNX MTCNN against facenet-pytorch's MTCNN (the reference; only this test imports it): on every fixture
photo the same faces, boxes with IoU >= 0.95 and landmarks within 1 px, on the same downscaled copy the
service detects on. bench/detector_agreement.py does the same over celeba_dev's 715 photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.core.images import decode_image
from service.vision.detector import FaceDetector

from .conftest import FIXTURES

PHOTOS = sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".jpg", ".png", ".webp", ".bmp"}
                and p.parent.name != "invalid")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


@pytest.fixture(scope="module")
def reference():
    torch = pytest.importorskip("torch")
    from facenet_pytorch.models.mtcnn import MTCNN

    mtcnn = MTCNN(keep_all=True, min_face_size=20, thresholds=[0.6, 0.7, 0.7], post_process=False, device="cpu")

    def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            boxes, _, points = mtcnn.detect(rgb, landmarks=True)
        return (np.zeros((0, 4)), np.zeros((0, 5, 2))) if boxes is None else (boxes, points)
    return detect


@pytest.fixture(scope="module")
def detector(pipeline) -> FaceDetector:
    return FaceDetector(pipeline.detector.models_dir, max_side=640).prepare()


def test_fixture_set_covers_faces_and_no_faces():
    assert len(PHOTOS) >= 25


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_faces_as_facenet_pytorch(detector, reference, path: Path):
    rgb = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26, max_decoded_bytes=1 << 30)
    h, w = rgb.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                interpolation=cv2.INTER_AREA)
    boxes, points = reference(small)
    ours = detector.detect(rgb)
    assert len(ours) == len(boxes)
    for face in ours:
        box, marks = face.box * scale, face.landmarks * scale  # back into the copy both detectors saw
        best = max(range(len(boxes)), key=lambda k: iou(box, boxes[k]))
        assert iou(box, boxes[best]) >= 0.95
        assert np.abs(marks - points[best]).max() * (1 / scale) <= 1.0  # in full-image pixels


def test_probe_search_finds_the_same_main_face(pipeline, settings):
    """The reduced search of verify/identify (at the default ratio) gives the full search's largest face on
    every fixture photo with a face."""
    detector = FaceDetector(pipeline.detector.models_dir,
                            probe_face_ratio=settings.detection.probe_face_ratio).prepare()
    for path in PHOTOS:
        rgb = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26, max_decoded_bytes=1 << 30)
        full, main = detector.detect(rgb), detector.detect(rgb, main_face=True)
        assert bool(full) == bool(main), path
        if full:
            assert iou(full[0].box, main[0].box) >= 0.95, path


def test_area_resampling_is_torchs():
    """Pyramid levels and candidate crops: torch's interpolate(mode="area") to float32 rounding."""
    torch = pytest.importorskip("torch")
    from service.vision.boxes import area_resize, crops_resized, integral

    rgb = np.random.default_rng(1).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    table = integral(rgb)
    image = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]
    for size in [(59, 80), (24, 33), (200, 150)]:
        expected = torch.nn.functional.interpolate(image, size=size, mode="area")[0].permute(1, 2, 0).numpy()
        assert np.abs(area_resize(table, *size) - expected).max() < 1e-3
    rects = np.array([[0, 97, 0, 131], [10, 40, 20, 33], [50, 53, 100, 131]])
    got = crops_resized(table, rects, 24)
    for rect, crop in zip(rects, got):
        y0, y1, x0, x1 = rect
        expected = torch.nn.functional.interpolate(image[:, :, y0:y1, x0:x1], size=(24, 24), mode="area")[0]
        assert np.abs(crop - expected.numpy()).max() < 1e-3


def test_nms_is_torchvisions():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from service.vision.boxes import nms

    rng = np.random.default_rng(2)
    corner = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate([corner, corner + rng.uniform(5, 40, (300, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for threshold in (0.5, 0.7):
        expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        assert nms(boxes, scores, threshold).tolist() == expected.tolist()
