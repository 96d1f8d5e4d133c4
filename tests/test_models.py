import json
import os
import shutil
import time

import cv2
import numpy as np
import pytest
import torch

from service.config import load_settings
from service.errors import ConfigError, ModelError
from service.vision.embedders.facenet import FaceNetEmbedder
from service.vision.embedders.registry import create_embedder
from service.vision.weights.cache import prepare_onnx
from service.vision.weights.facenet import FACENET_CASIA, FaceNetSource, facenet_graph_path, load_facenet_graph

from .conftest import fixture_bytes

LFW_FACES = ["lfw/Aaron_Eckhart/0001.jpg", "lfw/Colin_Powell/0040.jpg", "lfw/Colin_Powell/0049.jpg",
             "lfw/Serena_Williams/0001.jpg", "people/Kit_Harington/0001.jpg"]


@pytest.fixture(scope="module")
def facenet(settings):
    """The FaceNet model id on its own (the service default may be a fusion that contains it)."""
    return create_embedder(settings, FACENET_CASIA).prepare()


@pytest.fixture(scope="module")
def aligned_faces(recognizer, facenet):
    crops = []
    for rel in LFW_FACES:
        rgb = recognizer.pipeline.decode(fixture_bytes(rel))
        crops.append(facenet.align(rgb, recognizer.pipeline.detector.detect(rgb)[0]))
    return crops


@pytest.fixture(scope="module")
def casia_state_dict(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "casia.pt"
    torch.save(load_facenet_graph(facenet_graph_path()).state_dict(), path)
    return path


def test_onnx_matches_the_tensorflow_graph_run_by_opencv(settings, aligned_faces):
    """The converted model must compute what the published frozen graph computes, face by face."""
    net = cv2.dnn.readNetFromTensorflow(str(facenet_graph_path()))
    no_tta = FaceNetEmbedder(FaceNetSource(FACENET_CASIA, facenet_graph_path(), "tf_graph"),
                             settings.models_dir, flip=False).prepare()
    ours = no_tta.embed(aligned_faces)
    for crop, mine in zip(aligned_faces, ours):
        net.setInput(cv2.dnn.blobFromImage((crop.astype(np.float32) - 127.5) / 128.0))
        ref = net.forward().reshape(-1)
        cosine = float(mine @ ref / np.linalg.norm(ref))
        assert cosine >= 0.9999


def test_prepared_model_is_reused_not_rebuilt(facenet, settings):
    prepared = facenet.prepared
    before = os.stat(prepared.path).st_mtime_ns
    started = time.monotonic()
    again = prepare_onnx(facenet.source, settings.models_dir)
    assert again.sha256 == prepared.sha256
    assert os.stat(prepared.path).st_mtime_ns == before
    assert time.monotonic() - started < 5


def test_tampered_model_file_is_refused(facenet, settings, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(settings.models_dir, models)
    onnx = models / f"{FACENET_CASIA}.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        prepare_onnx(facenet.source, models)


def test_manifest_records_both_checksums(facenet, settings):
    manifest = json.loads((settings.models_dir / f"{FACENET_CASIA}.json").read_text())
    assert manifest["onnx_sha256"] == facenet.prepared.sha256
    assert manifest["source_sha256"] == facenet.prepared.source_sha256
    assert manifest["dim"] == 512


def test_state_dict_model_id_exports_and_embeds_like_the_graph(facenet, aligned_faces, casia_state_dict,
                                                              tmp_path):
    settings = load_settings(env={}, data_dir=str(tmp_path),
                             facenet_state_dicts={"facenet-mine": str(casia_state_dict)})
    mine = create_embedder(settings, "facenet-mine").prepare()
    assert mine.model_id == "facenet-mine" and mine.dim == 512
    a, b = mine.embed(aligned_faces), facenet.embed(aligned_faces)
    assert np.all(np.einsum("ij,ij->i", a, b) > 0.9999)


def test_changed_source_triggers_a_rebuild(casia_state_dict, tmp_path):
    source_path = tmp_path / "weights.pt"
    shutil.copy(casia_state_dict, source_path)
    source = FaceNetSource("facenet-mine", source_path, "state_dict")
    first = prepare_onnx(source, tmp_path / "models")
    state = torch.load(source_path, weights_only=True)
    state["last_bn.bias"] += 0.5
    torch.save(state, source_path)
    second = prepare_onnx(source, tmp_path / "models")
    assert second.source_sha256 != first.source_sha256
    assert second.sha256 != first.sha256


def test_unknown_model_id_and_bad_state_dict_are_clear_errors(tmp_path):
    settings = load_settings(env={}, data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="unknown model id"):
        create_embedder(settings, "facenet-nope")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    bad = load_settings(env={}, data_dir=str(tmp_path), facenet_state_dicts={"facenet-bad": str(junk)})
    with pytest.raises(ModelError):
        create_embedder(bad, "facenet-bad").prepare()
