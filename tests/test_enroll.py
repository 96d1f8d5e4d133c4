"""The bulk CLI against a real store: import a folder of people, then move them to another model id."""
import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from enroll.__main__ import main
from service.compose import open_store
from service.config import replace
from service.core.records import NewFace
from service.core.vectors import template
from service.errors import ConfigError
from service.vision.weights.facenet import facenet_graph_path, load_facenet_graph

from .conftest import FIXTURES
from .helpers import write_chroma_only


@pytest.fixture()
def store(tmp_path, settings, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(settings.models_dir)
    monkeypatch.setenv("FACEID_DATA_DIR", str(data_dir))
    return data_dir


def test_import_then_reindex(store, recognizer, settings, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    for person, files in {"Kit_Harington": ["0001.jpg", "0002.jpg"], "Joe_Biden": ["0001.jpg"],
                          "Nobody": []}.items():
        (photos / person).mkdir(parents=True)
        for f in files:
            shutil.copy(FIXTURES / "people" / person / f, photos / person / f)
    shutil.copy(FIXTURES / "no_face" / "dlib__dog.jpg", photos / "Nobody" / "dog.jpg")

    report = tmp_path / "rejected.csv"
    assert main(["import", str(photos), "--report", str(report)]) == 0  # a refused photo is no failure of the run
    status = {(line["person_id"], Path(line["file"]).name): line
              for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {k: v["status"] for k, v in status.items()} == {
        ("Joe_Biden", "0001.jpg"): "enrolled", ("Kit_Harington", "0001.jpg"): "enrolled",
        ("Kit_Harington", "0002.jpg"): "enrolled", ("Nobody", "dog.jpg"): "rejected"}
    assert status[("Nobody", "dog.jpg")]["code"] == "no_face"
    with report.open() as f:
        assert [(r["person_id"], r["code"]) for r in csv.DictReader(f)] == [("Nobody", "no_face")]

    assert main(["import", str(photos), "--report", str(report)]) == 0  # a re-run adds nothing twice
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["status"] for line in again) == ["already_there"] * 3 + ["rejected"]

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
    # Everyone moved, so the old model's records and vectors are gone and the service starts on this store.
    target = open_store(replace(settings, data_dir=store), "facenet-copy", 512)
    try:
        kit = target.get_person("Kit_Harington")
        assert kit is not None and kit.face_count == 2 and kit.name == "Kit Harington"
        assert all(f.source_sha256 for f in target.faces_of("Kit_Harington"))  # an import re-run still skips them
        assert target.person_count() == 2
        names = {getattr(c, "name", c) for c in target.index.client.list_collections()}
        assert names == {"index-facenet-copy-g1"}
    finally:
        target.close()


def test_reindex_keeps_the_old_store_when_someone_cannot_move(store, recognizer, settings, tmp_path, monkeypatch,
                                                              capsys):
    photos = tmp_path / "photos" / "Joe_Biden"
    photos.mkdir(parents=True)
    shutil.copy(FIXTURES / "people" / "Joe_Biden" / "0001.jpg", photos / "0001.jpg")
    monkeypatch.setenv("FACEID_STORE_FACE_CROPS", "false")  # nothing to re-embed later
    assert main(["import", str(photos.parent)]) == 0
    monkeypatch.setenv("FACEID_MODEL", "sface")
    assert main(["reindex", "--from", recognizer.pipeline.embedder.model_id]) == 1
    err = capsys.readouterr().err
    assert '"without_crops": 1' in err and '"source_dropped": false' in err
    old = open_store(replace(settings, data_dir=store), recognizer.model_id, recognizer.pipeline.embedder.dim,
                     only_model=False)
    try:
        assert old.get_person("Joe_Biden") is not None  # still there, not lost
    finally:
        old.close()


def test_migrate_moves_a_chroma_only_data_dir_into_the_records(store, recognizer, settings, embed_one, capsys):
    """A data dir written by the previous version: the service refuses it until `enroll migrate` has moved
    every person, face, crop and timestamp; then it serves them, and the old collections are gone."""
    model_id, dim = recognizer.model_id, recognizer.pipeline.embedder.dim
    kit, rose = embed_one("people/Kit_Harington/0001.jpg"), embed_one("people/Rose_Leslie/0001.jpg")
    created = write_chroma_only(store, model_id, dim, [
        ("kit", "Kit", {"a": 1}, template([kit]),
         [NewFace(kit, {"x": 1.0}, {"size": 90.0}, crop_jpeg=b"\xff\xd8crop")]),
        ("rose", "Rose", {}, rose, [NewFace(rose, {}, {})])])
    with pytest.raises(ConfigError, match="enroll migrate"):
        open_store(replace(settings, data_dir=store), model_id, dim)
    assert main(["migrate"]) == 0
    assert '"migrated": 2' in capsys.readouterr().err
    assert main(["migrate"]) == 0  # nothing left to move, nothing lost
    new = open_store(replace(settings, data_dir=store), model_id, dim)
    try:
        moved = new.get_person("kit")
        assert moved.metadata == {"a": 1} and moved.face_count == 1 and moved.created_at == created
        (face,) = new.faces_of("kit", embeddings=True)
        assert np.allclose(face.embedding, kit) and new.face_crop("kit", face.id) == b"\xff\xd8crop"
        assert [c.person_id for c in new.nearest_persons(rose, 1)] == ["rose"]
        assert {getattr(c, "name", c) for c in new.index.client.list_collections()} == {
            f"index-{model_id.replace(':', '-').replace('+', '-')}-g1"}
    finally:
        new.close()


def test_repair_and_rebuild_make_the_index_match_the_records(store, recognizer, settings, embed_one, capsys):
    model_id, dim = recognizer.model_id, recognizer.pipeline.embedder.dim
    kit = embed_one("people/Kit_Harington/0001.jpg")
    s = open_store(replace(settings, data_dir=store), model_id, dim)
    s.create_person(person_id="kit", name="Kit", metadata={}, faces=[NewFace(kit, {}, {})], template=kit)
    current = s.gallery().collection
    s.index.erase(current, ["kit"])            # as if the index lost a write (its files restored from a backup)
    s.index.upsert(current, [("ghost", kit)])  # as if written by hand, or restored from an old backup
    s.limits = dataclasses.replace(s.limits, recent_s=0.0)  # past the window in which kit is found anyway
    assert [c.person_id for c in s.nearest_persons(kit, 5)] == []  # a ghost is never returned
    s.close()
    assert main(["repair"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": model_id, "added": 1, "refreshed": 0, "removed": 1}
    assert main(["rebuild-index"]) == 0
    rebuilt = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rebuilt["model"] == model_id and rebuilt["persons"] == 1 and rebuilt["generation"] == 2
    s = open_store(replace(settings, data_dir=store), model_id, dim)
    try:
        assert [c.person_id for c in s.nearest_persons(kit, 5)] == ["kit"]
        assert s.reconcile() == {"added": 0, "refreshed": 0, "removed": 0}
    finally:
        s.close()
