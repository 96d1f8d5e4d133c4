"""What the Chroma-based stores do beyond the contract: persist, lock the embedded data dir, refuse another
model's store, and map their failures (503 for store failures; our own bugs propagate)."""
import re
import subprocess
import sys

import numpy as np
import pytest

from service.compose import open_store
from service.core.records import NewFace
from service.core.vectors import template
from service.errors import ConfigError, StoreUnavailable
from service.store.chroma import ChromaStore


@pytest.fixture(scope="module")
def kit(embed_one):
    return embed_one("people/Kit_Harington/0001.jpg")


@pytest.fixture(scope="module")
def model(recognizer):
    return {"model_id": recognizer.model_id, "dim": recognizer.pipeline.embedder.dim}


def face(v):
    return NewFace(embedding=v, box={"x": 0, "y": 0, "width": 1, "height": 1}, quality={"size": 100.0})


def test_persists_across_reopen(tmp_path, kit, model):
    g = ChromaStore.open(**model, data_dir=tmp_path)
    g.create_person(person_id="kit", name="Kit", metadata={"a": 1}, faces=[face(kit)], template=template([kit]))
    g.close()
    del g
    g = ChromaStore.open(**model, data_dir=tmp_path)
    person = g.get_person("kit")
    assert person.metadata == {"a": 1} and person.face_count == 1
    assert np.allclose(g.faces_of("kit", embeddings=True)[0].embedding, kit, atol=1e-6)
    g.close()


def test_failed_person_write_rolls_back_its_faces(tmp_path, kit, model, monkeypatch):
    g = ChromaStore.open(**model, data_dir=tmp_path)

    def disk_full(**kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(g.persons, "add", disk_full)
    with pytest.raises(StoreUnavailable):
        g.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(kit)], template=kit)
    monkeypatch.undo()
    assert g.face_count() == 0 and g.get_person("kit") is None
    g.close()


def test_our_bugs_are_not_disguised_as_store_outages(tmp_path, kit, model, monkeypatch):
    g = ChromaStore.open(**model, data_dir=tmp_path)

    def bug(**kwargs):
        raise KeyError("a bug of ours")
    monkeypatch.setattr(g.persons, "get", bug)
    with pytest.raises(KeyError):
        g.get_person("kit")
    monkeypatch.undo()
    g.close()


def test_second_process_on_the_same_data_dir_gets_a_clear_error(tmp_path, model):
    g = ChromaStore.open(**model, data_dir=tmp_path)
    code = ("from service.store.chroma import ChromaStore\n"
            f"ChromaStore.open(model_id={model['model_id']!r}, dim={model['dim']}, "
            f"data_dir=__import__('pathlib').Path({str(tmp_path)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    g.close()
    assert result.returncode != 0
    assert "in use by pid" in result.stderr and "one process" in result.stderr


def test_store_of_another_model_is_refused(tmp_path, kit, model, settings):
    from service.config import replace
    s = open_store(replace(settings, data_dir=tmp_path), **model)
    s.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(kit)], template=kit)
    s.close()
    with pytest.raises(ConfigError, match=re.escape(model["model_id"])):
        open_store(replace(settings, data_dir=tmp_path), "another-model", 128)
    other = open_store(replace(settings, data_dir=tmp_path), "another-model", 128, only_model=False)
    assert other.person_count() == 0
    other.close()
