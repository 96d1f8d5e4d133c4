"""What the records store on an embedded Chroma does beyond the contract: lock the embedded data dir, refuse
another model's store, and map its failures (503 for store failures; our own bugs propagate)."""
import re
import subprocess
import sys
from dataclasses import replace as replace_limits

import pytest
from sqlalchemy.exc import OperationalError

from service.compose import open_store
from service.config import replace
from service.core.records import NewFace
from service.errors import ConfigError, StoreUnavailable


@pytest.fixture(scope="module")
def kit(embed_one):
    return embed_one("people/Kit_Harington/0001.jpg")


@pytest.fixture(scope="module")
def model(recognizer):
    return {"model_id": recognizer.model_id, "dim": recognizer.pipeline.embedder.dim}


def face(v):
    return NewFace(embedding=v, box={"x": 0, "y": 0, "width": 1, "height": 1}, quality={"size": 100.0})


def test_our_bugs_are_not_disguised_as_store_outages(tmp_path, kit, model, settings, monkeypatch):
    """Only store failures become 503: a bug of ours (here a KeyError from the database layer) propagates."""
    store = open_store(replace(settings, data_dir=tmp_path), **model)

    def bug(*args, **kwargs):
        raise KeyError("a bug of ours")
    monkeypatch.setattr(store.engine, "connect", bug)
    with pytest.raises(KeyError):
        store.get_person("kit")
    monkeypatch.undo()
    store.close()


def test_a_store_failure_is_store_unavailable(tmp_path, kit, model, settings, monkeypatch):
    store = open_store(replace(settings, data_dir=tmp_path), **model)

    def disk_failed(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, OSError(5, "Input/output error"))
    monkeypatch.setattr(store.engine, "connect", disk_failed)
    with pytest.raises(StoreUnavailable):
        store.get_person("kit")
    monkeypatch.undo()
    store.close()


def test_second_process_on_the_same_data_dir_gets_a_clear_error(tmp_path, model, settings):
    store = open_store(replace(settings, data_dir=tmp_path), **model)
    code = ("from pathlib import Path\nfrom service.compose import open_store\n"
            "from service.config import load_settings\n"
            f"open_store(load_settings(env={{}}, data_dir={str(tmp_path)!r}), {model['model_id']!r}, {model['dim']})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    store.close()
    assert result.returncode != 0
    assert "in use by pid" in result.stderr and "one process" in result.stderr


def test_store_of_another_model_is_refused(tmp_path, kit, model, settings):
    s = open_store(replace(settings, data_dir=tmp_path), **model)
    s.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(kit)], template=kit)
    s.close()
    with pytest.raises(ConfigError, match=re.escape(model["model_id"])):
        open_store(replace(settings, data_dir=tmp_path), "another-model", 128)
    other = open_store(replace(settings, data_dir=tmp_path), "another-model", 128, only_model=False)
    assert other.person_count() == 0
    other.close()


def test_a_person_just_written_is_found_even_before_the_index_shows_them(tmp_path, kit, model, settings):
    """The duplicate check must see a registration the moment it commits: for ``recent_s`` after an index
    write, the person is also scored from the records, whatever the index returns meanwhile."""
    store = open_store(replace(settings, data_dir=tmp_path), **model)
    try:
        store.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(kit)], template=kit)
        assert store.index_lag() == 0  # applied
        store.index.erase(store.gallery().collection, ["kit"])  # an index that does not show it yet
        assert [c.person_id for c in store.nearest_persons(kit, 1)] == ["kit"]
        store.limits = replace_limits(store.limits, recent_s=0.0)  # past the window: the index alone
        assert store.nearest_persons(kit, 1) == []
    finally:
        store.close()


def test_a_registration_writes_the_index_after_its_section_and_is_searchable_meanwhile(tmp_path, kit, model,
                                                                                        settings):
    """The index write of a commit made in the registration section waits for the section's end (it is the
    slowest step and needs no serialising): inside, the person is committed but not yet indexed, and the
    duplicate check of the next registration still finds them, from the records; once the section is left the
    index has them."""
    store = open_store(replace(settings, data_dir=tmp_path), **model)
    try:
        with store.registration_lock():
            store.create_person(person_id="kit", name="Kit", metadata={}, faces=[face(kit)], template=kit)
            assert store.index_lag() == 1  # committed, not yet in the index
            assert [c.person_id for c in store.nearest_persons(kit, 1)] == ["kit"]
        assert store.index_lag() == 0
        store.limits = replace_limits(store.limits, recent_s=0.0)  # the index alone
        assert [c.person_id for c in store.nearest_persons(kit, 1)] == ["kit"]
        with pytest.raises(RuntimeError), store.registration_lock():  # a section that fails after its commit
            store.create_person(person_id="kit2", name="Kit", metadata={}, faces=[face(kit)], template=kit)
            raise RuntimeError("after the commit")
        assert store.index_lag() == 0 and {c.person_id for c in store.nearest_persons(kit, 2)} == {"kit", "kit2"}
    finally:
        store.close()
