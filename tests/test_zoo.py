"""Every model id embeds real faces and separates people; fusion is exactly the weighted mean of its parts;
a tampered weights file is refused."""
import shutil

import numpy as np
import pytest

from service.core.vectors import parse_fusion
from service.errors import ConfigError, ModelError
from service.vision.embedders.dlib import DlibEmbedder
from service.vision.embedders.registry import create_embedder
from service.vision.embedders.sface import SFaceEmbedder
from service.vision.weights.packaged import DLIB_RESNET, SFACE_INT8, packaged_file

from .conftest import fixture_bytes

PEOPLE = {"obama": ["people/Barack_Obama/0001.jpg", "people/Barack_Obama/0002.jpg", "people/Barack_Obama/0003.jpg"],
          "biden": ["people/Joe_Biden/0001.jpg", "people/Joe_Biden/0002.jpg"],
          "kit": ["people/Kit_Harington/0001.jpg", "people/Kit_Harington/0002.jpg", "people/Kit_Harington/0003.jpg"],
          "rose": ["people/Rose_Leslie/0001.jpg", "people/Rose_Leslie/0002.jpg"]}


@pytest.fixture(scope="module")
def faces(recognizer):
    out = []
    for person, rels in PEOPLE.items():
        for rel in rels:
            rgb = recognizer.pipeline.decode(fixture_bytes(rel))
            out.append((person, rgb, recognizer.pipeline.detector.detect(rgb)[0]))
    return out


@pytest.fixture(scope="module")
def embedders(settings):
    ids = ["facenet-casia-20180408", "sface", "dlib", "sface:0.6+facenet-casia-20180408:0.4",
           settings.recognition.model]
    return {model_id: create_embedder(settings, model_id).prepare() for model_id in ids}


@pytest.mark.parametrize("model_id", ["facenet-casia-20180408", "sface", "dlib",
                                      "sface:0.6+facenet-casia-20180408:0.4", "default"])
def test_model_separates_same_from_different_people(embedders, settings, faces, model_id):
    e = embedders[settings.recognition.model if model_id == "default" else model_id]
    vectors = np.stack([e.get(rgb, [face])[0] for _, rgb, face in faces])
    assert vectors.shape == (len(faces), e.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors.T
    labels = np.array([p for p, _, _ in faces])
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    different = labels[:, None] != labels[None, :]
    # Every genuine pair of these photos scores above every impostor pair.
    assert sims[same].min() > sims[different].max(), (sims[same].min(), sims[different].max())


def test_fusion_cosine_is_the_weighted_mean_of_the_parts(settings, faces):
    fusion = create_embedder(settings, "sface:3+facenet-casia-20180408:1+dlib:1").prepare()
    assert fusion.model_id == "sface:0.60+facenet-casia-20180408:0.20+dlib:0.20"
    assert fusion.dim == 128 + 512 + 128
    (_, rgb_a, face_a), (_, rgb_b, face_b) = faces[0], faces[3]  # Obama vs Biden
    (_, rgb_c, face_c) = faces[1]  # another Obama
    fa, fb, fc = (fusion.get(rgb, [f])[0] for rgb, f in ((rgb_a, face_a), (rgb_b, face_b), (rgb_c, face_c)))
    for other, rgb_o, face_o in ((fb, rgb_b, face_b), (fc, rgb_c, face_c)):
        parts = [part.get(rgb_a, [face_a])[0] @ part.get(rgb_o, [face_o])[0] for part, _ in fusion.parts]
        expected = sum(w * p for (_, w), p in zip(fusion.parts, parts))
        assert abs(float(fa @ other) - expected) < 1e-5


def test_dlib_onnx_port_gives_dlibs_own_vectors(embedders, faces):
    """The ONNX network converted from dlib's .dat must compute what dlib itself computes on the same chip."""
    import dlib

    ours = embedders["dlib"]
    reference = dlib.face_recognition_model_v1(str(packaged_file(DLIB_RESNET)))
    for _, rgb, face in faces:
        chip = ours.align(rgb, face)
        expected = np.asarray(reference.compute_face_descriptor(np.ascontiguousarray(chip)), np.float32)
        got = ours._forward([chip])[0]
        assert np.abs(got - expected).max() < 1e-4
        assert float(got @ expected) / (np.linalg.norm(got) * np.linalg.norm(expected)) > 0.99999


def test_sface_float32_graph_gives_the_int8_files_vectors(embedders, faces):
    """The graph dequantised at preparation, on OpenVINO, must compute what cv2.dnn computes on OpenCV Zoo's
    int8 file itself, so templates enrolled before the change keep their meaning."""
    import cv2

    ours = embedders["sface"]
    reference = cv2.dnn.readNetFromONNX(str(packaged_file(SFACE_INT8)))
    for _, rgb, face in faces:
        crop = ours.align(rgb, face)
        reference.setInput(cv2.dnn.blobFromImage(np.ascontiguousarray(crop[:, :, ::-1]), 1.0, (112, 112),
                                                 (0, 0, 0), swapRB=False, crop=False), "data")
        expected = reference.forward().reshape(-1)
        got = ours._forward([crop])[0]
        assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()
        assert float(got @ expected) / (np.linalg.norm(got) * np.linalg.norm(expected)) > 0.99999


def test_tampered_model_files_are_refused(tmp_path):
    for spec, make in ((SFACE_INT8, lambda p: SFaceEmbedder(tmp_path / "models", path=p)),
                       (DLIB_RESNET, lambda p: DlibEmbedder(tmp_path / "models", resnet_path=p))):
        copy = tmp_path / spec.relpath.split("/")[-1]
        shutil.copy(packaged_file(spec), copy)
        make(copy).prepare()  # an intact copy loads
        data = bytearray(copy.read_bytes())
        data[len(data) // 3] ^= 0x01
        copy.write_bytes(bytes(data))
        with pytest.raises(ModelError, match="checksum"):
            make(copy).prepare()


@pytest.mark.parametrize("bad", ["sface+dlib", "sface:0+dlib:1", "sface:1+sface:1", "sface:x+dlib:1",
                                 "nope:1+dlib:1"])
def test_bad_fusion_ids_are_config_errors(settings, bad):
    with pytest.raises(ConfigError):
        create_embedder(settings, bad)


def test_fusion_id_parsing():
    assert parse_fusion("sface") is None
    assert parse_fusion("sface:0.6+dlib:0.4") == [("sface", 0.6), ("dlib", 0.4)]
