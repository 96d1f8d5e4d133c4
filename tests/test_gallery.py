"""The store on its own: a real embedded Chroma in a temp dir, real embeddings of real photos."""
import re
import subprocess
import sys

import numpy as np
import pytest

from service.errors import ConfigError, PersonExists, ValidationError
from service.gallery import Gallery, NewFace


@pytest.fixture(scope="module")
def vectors(embed_one):
    return {name: embed_one(rel) for name, rel in {
        "obama1": "people/Barack_Obama/0001.jpg", "obama2": "people/Barack_Obama/0002.jpg",
        "biden": "people/Joe_Biden/0001.jpg", "kit": "people/Kit_Harington/0001.jpg"}.items()}


def face(v):
    return NewFace(embedding=v, box={"x": 0, "y": 0, "width": 1, "height": 1}, quality={"size": 100.0})


@pytest.fixture(scope="module")
def model(recognizer):
    return {"model_id": recognizer.embedder.model_id, "dim": recognizer.embedder.dim}


@pytest.fixture()
def gallery(tmp_path, model):
    g = Gallery.open(**model, data_dir=tmp_path)
    yield g
    g.close()


def test_nearest_persons_ranks_by_template_cosine(gallery, vectors):
    gallery.create_person(person_id="obama", name="Obama", metadata={}, faces=[face(vectors["obama1"])])
    gallery.create_person(person_id="biden", name="Biden", metadata={}, faces=[face(vectors["biden"])])
    gallery.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(vectors["kit"])])
    hits = gallery.nearest_persons(vectors["obama2"], 2)
    assert [h.person_id for h in hits][0] == "obama" and len(hits) == 2
    expected = float(vectors["obama1"] @ vectors["obama2"])
    assert abs(hits[0].similarity - expected) < 1e-4  # cosine, exactly as computed by numpy
    assert hits[0].name == "Obama"
    assert [h.person_id for h in gallery.nearest_persons(vectors["obama2"], 3, exclude="obama")] != ["obama"]


def test_template_is_the_mean_of_the_faces_and_follows_them(gallery, vectors):
    gallery.create_person(person_id="obama", name="Obama", metadata={}, faces=[face(vectors["obama1"])])
    assert np.allclose(gallery.template_of("obama"), vectors["obama1"], atol=1e-6)
    _, (added,) = gallery.add_faces("obama", [face(vectors["obama2"])])
    mean = vectors["obama1"] + vectors["obama2"]
    assert np.allclose(gallery.template_of("obama"), mean / np.linalg.norm(mean), atol=1e-5)
    assert gallery.get_person("obama").face_count == 2
    assert gallery.delete_face("obama", added.id)
    assert np.allclose(gallery.template_of("obama"), vectors["obama1"], atol=1e-5)
    assert not gallery.delete_face("obama", added.id)
    (last,) = gallery.faces_of("obama")
    with pytest.raises(ValidationError):  # no person without a template
        gallery.delete_face("obama", last.id)


def test_a_person_without_a_record_is_invisible(gallery, vectors):
    """Faces written by a registration that never committed its person record are never returned."""
    gallery.create_person(person_id="biden", name="Biden", metadata={}, faces=[face(vectors["biden"])])
    gallery._add_faces("ghost", [face(vectors["obama1"])], "2026-01-01T00:00:00Z")  # half-written
    hits = gallery.nearest_persons(vectors["obama2"], 5)
    assert [h.person_id for h in hits] == ["biden"]
    # reusing the id sweeps the leftovers: the new person has exactly their own face
    person, _ = gallery.create_person(person_id="ghost", name="G", metadata={}, faces=[face(vectors["kit"])])
    assert person.face_count == 1 and len(gallery.faces_of("ghost")) == 1


def test_failed_person_write_rolls_back_its_faces(gallery, vectors, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(gallery.persons, "add", boom)
    with pytest.raises(Exception) as err:
        gallery.create_person(person_id="obama", name="Obama", metadata={}, faces=[face(vectors["obama1"])])
    assert getattr(err.value, "code", None) == "store_unavailable"
    monkeypatch.undo()
    assert gallery.face_count() == 0 and gallery.get_person("obama") is None


def test_duplicate_person_id(gallery, vectors):
    gallery.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(vectors["kit"])])
    with pytest.raises(PersonExists):
        gallery.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(vectors["kit"])])


def test_persists_across_reopen(tmp_path, vectors, model):
    g = Gallery.open(**model, data_dir=tmp_path)
    g.create_person(person_id="kit", name="Kit", metadata={"a": 1}, faces=[face(vectors["kit"])])
    g.close()
    del g
    g = Gallery.open(**model, data_dir=tmp_path)
    person = g.get_person("kit")
    assert person.metadata == {"a": 1} and person.face_count == 1
    stored = g.faces_of("kit", embeddings=True)
    assert np.allclose(stored[0].embedding, vectors["kit"], atol=1e-6)
    g.close()


def test_second_process_on_the_same_data_dir_gets_a_clear_error(gallery, tmp_path, model):
    code = ("from service.gallery import Gallery\n"
            f"Gallery.open(model_id={model['model_id']!r}, dim={model['dim']}, "
            f"data_dir=__import__('pathlib').Path({str(tmp_path)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "in use by pid" in result.stderr and "one process" in result.stderr


def test_store_of_another_model_is_refused(tmp_path, vectors, model):
    g = Gallery.open(**model, data_dir=tmp_path)
    g.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(vectors["kit"])])
    g.close()
    del g
    other = Gallery.open(model_id="another-model", dim=128, data_dir=tmp_path)
    try:
        with pytest.raises(ConfigError, match=re.escape(model["model_id"])):
            other.check_other_models()
    finally:
        other.close()
