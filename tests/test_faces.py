import numpy as np
import pytest

from service.vision.align import crop_face
from service.vision.detector import FaceDetector

from .conftest import fixture_bytes


def detect(recognizer, rel):
    return recognizer.pipeline.detector.detect(recognizer.pipeline.decode(fixture_bytes(rel)))


@pytest.mark.parametrize("rel", ["no_face/dlib__dog.jpg", "no_face/dlib__giraffe.jpg"])
def test_no_face_photo_has_no_faces(recognizer, rel):
    assert detect(recognizer, rel) == []


@pytest.mark.parametrize("rel,count", [("multi_face/face_recognition__two_people.jpg", 2),
                                       ("multi_face/compreface__011_3.jpg", 3),
                                       ("multi_face/face_recognition__kit_with_rose.jpg", 2)])
def test_group_photo_has_every_face_largest_first(recognizer, rel, count):
    faces = detect(recognizer, rel)
    assert len(faces) == count
    areas = [f.width * f.height for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.probability > 0.9
        x1, y1, x2, y2 = f.box
        eyes_nose = f.landmarks[:3]
        assert np.all((eyes_nose[:, 0] > x1) & (eyes_nose[:, 0] < x2) & (eyes_nose[:, 1] > y1) & (eyes_nose[:, 1] < y2))
        assert f.landmarks[0, 0] < f.landmarks[1, 0]  # left eye is left of right eye in the image


def test_boxes_are_in_full_resolution_coordinates(recognizer):
    """Detecting on a 640 px copy must give the same boxes (to a few pixels) as detecting at full size."""
    rgb = recognizer.pipeline.decode(fixture_bytes("people/Barack_Obama/0001.jpg"))  # 910 x 1137
    models = recognizer.pipeline.detector.models_dir
    small = FaceDetector(models, max_side=640).prepare().detect(rgb)
    full = FaceDetector(models, max_side=2000).prepare().detect(rgb)
    assert small and full
    assert np.abs(small[0].box - full[0].box).max() < 0.05 * full[0].width


def test_crop_is_square_and_clipped_at_borders(recognizer):
    rgb = recognizer.pipeline.decode(fixture_bytes("people/Kit_Harington/0002.jpg"))
    crop = crop_face(rgb, np.array([-30.0, -30.0, 100.0, 90.0]), 160, 32)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8


def test_tiny_image_has_no_faces(recognizer):
    assert recognizer.pipeline.detector.detect(np.zeros((8, 8, 3), np.uint8)) == []


def test_only_probes_for_one_face_use_the_reduced_search(pipeline, monkeypatch):
    """verify/identify/compare (one probe face) ask for the main face; all_faces, enrollment and detect
    search fully."""
    calls = []
    real = pipeline.detector.detect

    def recording(rgb, **kw):
        calls.append(kw.get("main_face", False))
        return real(rgb, **kw)
    monkeypatch.setattr(pipeline.detector, "detect", recording)
    data = fixture_bytes("people/Joe_Biden/0001.jpg")
    pipeline.probes(data)
    pipeline.probes(data, all_faces=True)
    pipeline.enrollment_face(data, 0)
    pipeline.detect(data)
    assert calls == [True, False, False, False]


@pytest.mark.parametrize("rel", ["people/Kit_Harington/0001.jpg", "people/Barack_Obama/0001.jpg",
                                 "people/Joe_Biden/0002.jpg", "multi_face/face_recognition__two_people.jpg",
                                 "multi_face/face_recognition__kit_with_rose.jpg"])
def test_a_search_from_a_minimum_size_finds_the_same_large_faces(recognizer, rel):
    """Enrollment searches only for faces the quality gate could take (``min_size``): the faces of that size
    are those of the full search, the same boxes to a pixel."""
    rgb = recognizer.pipeline.decode(fixture_bytes(rel))
    detector, limit = recognizer.pipeline.detector, recognizer.pipeline.quality.min_face_size
    full = [f for f in detector.detect(rgb) if f.size >= limit]
    reduced = [f for f in detector.detect(rgb, min_size=limit) if f.size >= limit]
    assert len(reduced) == len(full) >= 1
    for a, b in zip(full, reduced):
        assert np.abs(a.box - b.box).max() < 1.0


def test_a_search_from_a_minimum_size_falls_back_to_every_face_when_none_is_that_large(recognizer):
    """A photo whose only face is below the minimum still shows it (enrollment then answers low_quality, as
    with the full search, not no_face)."""
    import cv2

    rgb = recognizer.pipeline.decode(fixture_bytes("people/Kit_Harington/0001.jpg"))
    detector = recognizer.pipeline.detector
    scale = 100 / max(rgb.shape[:2])
    small = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    full = detector.detect(small)
    assert len(full) >= 1 and full[0].size < 64
    reduced = detector.detect(small, min_size=64)
    assert [tuple(f.box) for f in reduced] == [tuple(f.box) for f in full]
