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
    detector = FaceDetector(pipeline.detector.models_dir, probe_face_ratio=settings.detect_probe_face_ratio).prepare()
    for path in PHOTOS:
        rgb = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26, max_decoded_bytes=1 << 30)
        full, main = detector.detect(rgb), detector.detect(rgb, main_face=True)
        assert bool(full) == bool(main), path
        if full:
            assert iou(full[0].box, main[0].box) >= 0.95, path
