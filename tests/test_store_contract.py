"""One contract, every store (``core/ports.py`` states it): the records store on SQLite with an embedded Chroma
index and on a real PostgreSQL with a real `chroma run` server as the index, and the in-memory store. Real
embeddings of real photos (the fast tier runs the same tests on the memory store with synthetic vectors)."""
import itertools
import threading

import numpy as np
import pytest

from service.compose import open_store
from service.config import replace
from service.core.records import NewFace
from service.core.vectors import template
from service.errors import PersonExists, PersonNotFound
from service.store.memory import MemoryStore

_names = itertools.count()


@pytest.fixture(scope="module")
def vectors(embed_one):
    return {name: embed_one(rel) for name, rel in {
        "obama1": "people/Barack_Obama/0001.jpg", "obama2": "people/Barack_Obama/0002.jpg",
        "biden": "people/Joe_Biden/0001.jpg", "kit": "people/Kit_Harington/0001.jpg"}.items()}


@pytest.fixture(params=["records-sqlite", "records-postgres", "memory"])
def store(request, tmp_path, recognizer, settings):
    dim = recognizer.pipeline.embedder.dim
    if request.param == "memory":
        s = MemoryStore("contract", dim)
    elif request.param == "records-sqlite":
        s = open_store(replace(settings, data_dir=tmp_path), "contract", dim)
    else:  # a fresh database; one index server for the session, a fresh model id per test
        s = open_store(replace(settings, data_dir=tmp_path, chroma_url=request.getfixturevalue("shared_chroma_server"),
                               database_url=request.getfixturevalue("postgres_url")),
                       f"contract-{next(_names)}", dim)
    yield s
    s.close()


def face(v, crop=None):
    return NewFace(embedding=v, box={"x": 0, "y": 0, "width": 1, "height": 1}, quality={"size": 100.0},
                   crop_jpeg=crop)


def create(store, person_id, *vs, name=None, metadata=None):
    return store.create_person(person_id=person_id, name=name or person_id.title(), metadata=metadata or {},
                               faces=[face(v) for v in vs], template=template(list(vs)))


def test_nearest_persons_ranks_by_template_cosine(store, vectors):
    create(store, "obama", vectors["obama1"])
    create(store, "biden", vectors["biden"])
    create(store, "kit", vectors["kit"])
    hits = store.nearest_persons(vectors["obama2"], 2)
    assert [h.person_id for h in hits][0] == "obama" and len(hits) == 2
    assert hits[0].similarity >= hits[1].similarity
    assert abs(hits[0].similarity - float(vectors["obama1"] @ vectors["obama2"])) < 1e-4
    assert hits[0].name == "Obama"
    assert "obama" not in [h.person_id for h in store.nearest_persons(vectors["obama2"], 3, exclude="obama")]
    assert store.nearest_persons(vectors["obama2"], 10) and len(store.nearest_persons(vectors["obama2"], 10)) == 3


def test_empty_store_finds_nobody(store, vectors):
    assert store.nearest_persons(vectors["kit"], 5) == []
    assert store.person_count() == 0 and store.face_count() == 0 and store.heartbeat()


def test_create_get_and_the_stored_template(store, vectors):
    person, stored = create(store, "obama", vectors["obama1"], vectors["obama2"], metadata={"team": "a"})
    assert person.id == "obama" and person.face_count == 2 and len(stored) == 2
    assert person.created_at == person.updated_at
    got = store.get_person("obama")
    assert got.metadata == {"team": "a"} and got.face_count == 2 and got.name == "Obama"
    mean = vectors["obama1"] + vectors["obama2"]
    assert np.allclose(store.template_of("obama"), mean / np.linalg.norm(mean), atol=1e-5)
    faces = store.faces_of("obama", embeddings=True)
    assert {f.id for f in faces} == {f.id for f in stored}
    assert any(np.allclose(f.embedding, vectors["obama1"], atol=1e-6) for f in faces)
    assert all(f.embedding is None for f in store.faces_of("obama"))


def test_taken_id_and_missing_person(store, vectors):
    create(store, "kit", vectors["kit"])
    with pytest.raises(PersonExists):
        create(store, "kit", vectors["kit"])
    assert store.get_person("nobody") is None
    assert store.faces_of("nobody") == []
    for call in (lambda: store.template_of("nobody"), lambda: store.delete_person("nobody"),
                 lambda: store.update_person("nobody", name="x"), lambda: store.add_faces("nobody", [])):
        with pytest.raises(PersonNotFound):
            call()


def test_update_changes_only_what_is_given(store, vectors):
    create(store, "biden", vectors["biden"], metadata={"a": 1})
    updated = store.update_person("biden", name="Joe Biden")
    assert updated.name == "Joe Biden" and updated.metadata == {"a": 1} and updated.face_count == 1
    assert np.allclose(store.template_of("biden"), vectors["biden"], atol=1e-5)
    store.update_person("biden", template=vectors["kit"])
    assert np.allclose(store.template_of("biden"), vectors["kit"], atol=1e-5)
    assert store.get_person("biden").name == "Joe Biden"


def test_faces_add_and_delete(store, vectors):
    create(store, "obama", vectors["obama1"])
    (added,) = store.add_faces("obama", [face(vectors["obama2"], crop=b"\xff\xd8jpeg")])
    assert added.has_crop and store.get_person("obama").face_count == 2
    assert store.face_crop("obama", added.id) == b"\xff\xd8jpeg"
    assert store.face_crop("someone-else", added.id) is None  # a face is read through its owner only
    assert not store.delete_face("someone-else", added.id)
    assert store.delete_face("obama", added.id)
    assert not store.delete_face("obama", added.id)
    assert store.face_crop("obama", added.id) is None and store.get_person("obama").face_count == 1


def test_faces_and_template_change_together(store, vectors):
    create(store, "obama", vectors["obama1"])
    both = template([vectors["obama1"], vectors["obama2"]])
    (added,) = store.add_faces("obama", [face(vectors["obama2"])], template=both)
    assert np.allclose(store.template_of("obama"), both, atol=1e-5)
    assert store.nearest_persons(both, 1)[0].similarity > 0.999  # the index follows
    assert not store.delete_face("obama", "no-such-face", template=vectors["kit"])  # nothing changes
    assert np.allclose(store.template_of("obama"), both, atol=1e-5)
    assert store.delete_face("obama", added.id, template=vectors["obama1"])
    assert np.allclose(store.template_of("obama"), vectors["obama1"], atol=1e-5)
    assert store.nearest_persons(vectors["obama1"], 1)[0].similarity > 0.999


def test_nearest_persons_say_how_many_photos_each_template_holds(store, vectors):
    """Identify's threshold depends on it (a template of several photos needs a stricter one)."""
    create(store, "obama", vectors["obama1"], vectors["obama2"])
    create(store, "kit", vectors["kit"])
    assert {h.person_id: h.photos for h in store.nearest_persons(vectors["obama1"], 5)} == {"obama": 2, "kit": 1}
    (added,) = store.add_faces("kit", [face(vectors["kit"])], template=vectors["kit"])
    store.add_faces("kit", [face(vectors["biden"])], template=vectors["kit"])
    assert store.nearest_persons(vectors["kit"], 1)[0].photos == 3
    assert store.delete_face("kit", added.id, template=vectors["kit"])
    assert [(h.person_id, h.photos) for h in store.nearest_persons(vectors["kit"], 1)] == [("kit", 2)]


def test_delete_person_erases_faces_and_hides_from_search(store, vectors):
    create(store, "obama", vectors["obama1"], vectors["obama2"])
    create(store, "kit", vectors["kit"])
    deleted = store.delete_person("obama")
    assert deleted.id == "obama" and deleted.face_count == 2
    assert store.get_person("obama") is None and store.faces_of("obama") == []
    assert [h.person_id for h in store.nearest_persons(vectors["obama2"], 5)] == ["kit"]
    assert store.face_count() == 1
    create(store, "obama", vectors["obama1"])  # the id is free again, with only the new face
    assert store.get_person("obama").face_count == 1


def test_list_pages_search_and_total(store, vectors):
    for i, v in enumerate([vectors["obama1"], vectors["biden"], vectors["kit"]]):
        create(store, f"p{i}", v, name=["Barack Obama", "Joe Biden", "Kit Harington"][i])
    first, total = store.list_persons(limit=2, offset=0)
    rest, _ = store.list_persons(limit=2, offset=2)
    assert total == 3 and len(first) == 2 and len(rest) == 1
    assert {p.id for p in first + rest} == {"p0", "p1", "p2"}
    found, total = store.list_persons(limit=10, offset=0, q="BIDEN")
    assert total == 1 and [p.name for p in found] == ["Joe Biden"] and found[0].face_count == 1


def test_drop_erases_everything(store, vectors):
    create(store, "kit", vectors["kit"])
    store.drop()
    assert store.person_count() == 0 and store.face_count() == 0 and store.get_person("kit") is None


def test_concurrent_creates_of_one_id_give_one_person(store, vectors):
    results = []

    def register():
        try:
            create(store, "same", vectors["kit"])
            results.append("ok")
        except PersonExists:
            results.append("exists")
    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists"] * 3 + ["ok"]
    assert store.get_person("same").face_count == 1


def test_keyset_pages_cover_everyone_once_even_while_people_are_added(store, vectors):
    for i in range(5):
        create(store, f"k{i}", vectors["kit"])
    seen, after = [], None
    while True:
        page, total = store.list_persons(limit=2, after=after)
        if not page:
            break
        seen += [p.id for p in page]
        after = (page[-1].created_at, page[-1].id)
        if len(seen) == 2:
            create(store, "late", vectors["biden"])  # arrives mid-listing: after everyone seen so far
    assert sorted(seen) == sorted([f"k{i}" for i in range(5)] + ["late"]) and len(seen) == len(set(seen))
