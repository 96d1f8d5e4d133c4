"""The bulk CLI against a real store: import a folder of people, then move them to another model id."""
import json
import shutil

import pytest
import torch

from enroll.__main__ import main
from service.store.chroma import ChromaStore
from service.vision.weights.facenet import facenet_graph_path, load_facenet_graph

from .conftest import FIXTURES


@pytest.fixture()
def store(tmp_path, settings, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(settings.models_dir)
    monkeypatch.setenv("FACEID_DATA_DIR", str(data_dir))
    return data_dir


def test_import_then_reindex(store, recognizer, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    for person, files in {"Kit_Harington": ["0001.jpg", "0002.jpg"], "Joe_Biden": ["0001.jpg"],
                          "Nobody": []}.items():
        (photos / person).mkdir(parents=True)
        for f in files:
            shutil.copy(FIXTURES / "people" / person / f, photos / person / f)
    shutil.copy(FIXTURES / "no_face" / "dlib__dog.jpg", photos / "Nobody" / "dog.jpg")

    assert main(["import", str(photos)]) == 1  # one person failed
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    status = {line["person_id"]: line for line in lines}
    assert status["Kit_Harington"]["status"] == "registered" and status["Kit_Harington"]["faces"] == 2
    assert status["Joe_Biden"]["status"] == "registered"
    assert status["Nobody"]["status"] == "failed" and status["Nobody"]["code"] == "no_face"

    assert main(["import", str(photos)]) == 1  # idempotent for those already there
    assert {r["person_id"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}[
        "Kit_Harington"] == "exists"

    weights = tmp_path / "weights.pt"
    torch.save(load_facenet_graph(facenet_graph_path()).state_dict(), weights)
    monkeypatch.setenv("FACEID_MODEL", "facenet-copy")
    monkeypatch.setenv("FACEID_FACENET_STATE_DICTS", f"facenet-copy={weights}")
    source = recognizer.pipeline.embedder
    assert main(["reindex", "--from", "no-such-model"]) == 2  # an unknown source model is named, not guessed
    assert "unknown model id" in capsys.readouterr().err
    assert main(["reindex", "--from", source.model_id]) == 0  # its dimension follows from the id
    out = capsys.readouterr().out
    assert "skipped" not in out  # every stored crop was found and re-aligned
    target = ChromaStore.open(model_id="facenet-copy", dim=512, data_dir=store)
    try:
        kit = target.get_person("Kit_Harington")
        assert kit is not None and kit.face_count == 2 and kit.name == "Kit Harington"
        assert target.person_count() == 2
        # Everyone moved, so the old model's vectors are gone and the service may start on this store.
        names = {getattr(c, "name", c) for c in target.client.list_collections()}
        assert names == {"persons-facenet-copy", "faces-facenet-copy"}
        assert target.other_models() == {}
    finally:
        target.close()


def test_reindex_keeps_the_old_store_when_someone_cannot_move(store, recognizer, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos" / "Joe_Biden"
    photos.mkdir(parents=True)
    shutil.copy(FIXTURES / "people" / "Joe_Biden" / "0001.jpg", photos / "0001.jpg")
    monkeypatch.setenv("FACEID_STORE_FACE_CROPS", "false")  # nothing to re-embed later
    assert main(["import", str(photos.parent)]) == 0
    monkeypatch.setenv("FACEID_MODEL", "sface")
    assert main(["reindex", "--from", recognizer.pipeline.embedder.model_id]) == 1
    err = capsys.readouterr().err
    assert '"without_crops": 1' in err and '"source_dropped": false' in err
    old = ChromaStore.open(model_id=recognizer.model_id, dim=recognizer.pipeline.embedder.dim, data_dir=store)
    try:
        assert old.get_person("Joe_Biden") is not None  # still there, not lost
    finally:
        old.close()
