"""The store contract (``tests/test_store_contract.py``) on the memory store, with synthetic vectors: the
same assertions the real stores pass, here in milliseconds."""
from __future__ import annotations

import numpy as np
import pytest

from service.store.memory import MemoryStore

from ..test_store_contract import (  # noqa: F401  (collected here, with this module's fixtures)
    test_concurrent_creates_of_one_id_give_one_person,
    test_create_get_and_the_stored_template,
    test_delete_person_erases_faces_and_hides_from_search,
    test_drop_erases_everything,
    test_empty_store_finds_nobody,
    test_faces_add_and_delete,
    test_faces_and_template_change_together,
    test_keyset_pages_cover_everyone_once_even_while_people_are_added,
    test_list_pages_search_and_total,
    test_nearest_persons_ranks_by_template_cosine,
    test_nearest_persons_say_how_many_photos_each_template_holds,
    test_taken_id_and_missing_person,
    test_update_changes_only_what_is_given,
)

DIM = 64


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors():
    """Two photos of one person (close), two other people (far), as real embeddings are."""
    rng = np.random.default_rng(7)
    obama, biden, kit = (rng.normal(size=DIM) for _ in range(3))
    return {"obama1": _unit(obama + 0.3 * rng.normal(size=DIM)), "obama2": _unit(obama + 0.3 * rng.normal(size=DIM)),
            "biden": _unit(biden), "kit": _unit(kit)}


@pytest.fixture()
def store():
    s = MemoryStore("contract", DIM)
    yield s
    s.close()
