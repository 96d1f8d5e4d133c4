"""The rules of the use-cases, on the in-memory store with the real pipeline and real photos: a person's
template follows their faces, a person keeps one face, duplicates are refused, thresholds only tighten."""
import numpy as np
import pytest

from service.core.recognizer import Policy, Recognizer
from service.core.records import NewFace
from service.errors import ConfigError, DuplicateFace, FaceNotFound, PersonExists, PersonNotFound, ValidationError
from service.store.memory import MemoryStore

from .conftest import fixture_bytes


@pytest.fixture()
def rec(recognizer):
    store = MemoryStore(recognizer.model_id, recognizer.pipeline.embedder.dim)
    return Recognizer(recognizer.pipeline, store, recognizer.calibration)


def test_template_is_the_mean_of_the_faces_and_follows_them(rec, embed_one):
    a, b = embed_one("people/Barack_Obama/0001.jpg"), embed_one("people/Barack_Obama/0002.jpg")
    rec.enroll(images=[fixture_bytes("people/Barack_Obama/0001.jpg")], name="Obama", person_id="obama")
    assert np.allclose(rec.store.template_of("obama"), a, atol=1e-5)
    person, (added,) = rec.add_faces("obama", [fixture_bytes("people/Barack_Obama/0002.jpg")])
    assert person.face_count == 2
    assert np.allclose(rec.store.template_of("obama"), (a + b) / np.linalg.norm(a + b), atol=1e-5)
    assert rec.delete_face("obama", added.id).face_count == 1
    assert np.allclose(rec.store.template_of("obama"), a, atol=1e-5)
    with pytest.raises(FaceNotFound):
        rec.delete_face("obama", added.id)
    (last,) = rec.store.faces_of("obama")
    with pytest.raises(ValidationError, match="last face"):  # no person without a template
        rec.delete_face("obama", last.id)


def test_duplicate_face_is_refused_unless_allowed(rec, recognizer):
    rec.enroll(images=[fixture_bytes("people/Kit_Harington/0001.jpg")], name="Kit", person_id="kit")
    with pytest.raises(DuplicateFace) as err:
        rec.enroll(images=[fixture_bytes("people/Kit_Harington/0002.jpg")], name="Impostor", person_id="other")
    assert err.value.details["person_id"] == "kit" and rec.store.get_person("other") is None
    lenient = Recognizer(rec.pipeline, rec.store, rec.calibration, Policy(duplicate_policy="allow"))
    lenient.enroll(images=[fixture_bytes("people/Kit_Harington/0002.jpg")], name="Twin", person_id="twin")
    assert rec.store.person_count() == 2


def test_taken_and_unknown_ids(rec):
    rec.enroll(images=[fixture_bytes("people/Joe_Biden/0001.jpg")], name="Biden", person_id="biden")
    with pytest.raises(PersonExists):
        rec.enroll(images=[fixture_bytes("people/Joe_Biden/0002.jpg")], name="Biden", person_id="biden")
    with pytest.raises(PersonNotFound):
        rec.verify("nobody", fixture_bytes("people/Joe_Biden/0002.jpg"))
    with pytest.raises(ValidationError):
        rec.enroll(images=[fixture_bytes("people/Joe_Biden/0002.jpg")], name="x", person_id="bad id!")


def test_verify_and_identify_decide_with_the_calibrated_thresholds(rec):
    rec.enroll(images=[fixture_bytes("people/Rose_Leslie/0001.jpg")], name="Rose", person_id="rose")
    verdict = rec.verify("rose", fixture_bytes("people/Rose_Leslie/0002.jpg"))
    assert verdict.match and verdict.threshold == rec.verify_threshold
    strict = rec.verify("rose", fixture_bytes("people/Rose_Leslie/0002.jpg"), threshold=0.999)
    assert not strict.match and strict.similarity == pytest.approx(verdict.similarity)
    with pytest.raises(ValidationError):  # never looser than calibrated
        rec.verify("rose", fixture_bytes("people/Rose_Leslie/0002.jpg"), threshold=0.1)
    found = rec.identify(fixture_bytes("people/Rose_Leslie/0002.jpg"))
    assert found.gallery_size == 1 and found.faces[0].match.person_id == "rose"
    assert found.threshold >= rec.verify_threshold
    stranger = rec.identify(fixture_bytes("people/Joe_Biden/0001.jpg"))
    assert stranger.faces[0].match is None


def test_duplicates_are_judged_at_the_open_set_threshold_for_the_gallery_size(rec, embed_one):
    """A face between verify's 1:1 threshold and the open-set threshold of a large gallery is a stranger who
    happens to look alike, not a duplicate: at verify's threshold false duplicates would grow with N."""
    rng = np.random.default_rng(0)
    dim = rec.pipeline.embedder.dim
    kit = embed_one("people/Kit_Harington/0001.jpg")
    rec.store.create_person(person_id="kit", name="Kit", metadata={}, faces=[NewFace(kit, {}, {})], template=kit)
    small = rec.identify_threshold()[0]
    for i in range(2000):  # a gallery of 2,001 people (random directions: nobody near Kit)
        v = rng.normal(size=dim).astype(np.float32)
        v /= np.linalg.norm(v)
        rec.store.create_person(person_id=f"p{i}", name="P", metadata={}, faces=[NewFace(v, {}, {})], template=v)
    large = rec.identify_threshold()[0]
    assert small == pytest.approx(rec.verify_threshold) and large > rec.verify_threshold + 0.01
    # a vector at cosine halfway between the two thresholds from Kit's template
    cos = (rec.verify_threshold + large) / 2
    other = rng.normal(size=dim).astype(np.float32)
    other -= (other @ kit) * kit
    other /= np.linalg.norm(other)
    lookalike = (cos * kit + np.sqrt(1 - cos ** 2) * other).astype(np.float32)
    rec.check_duplicates([NewFace(lookalike, {}, {})], None)  # not a duplicate in a gallery this size
    with pytest.raises(DuplicateFace):
        rec.check_duplicates([NewFace(kit, {}, {})], None)
    # The same rule as identify's: a face just above that threshold is Kit's duplicate while Kit stands alone,
    # and not once a second person is nearly as close (a crowd of look-alikes, not Kit).
    near = unit_at(kit, large + 0.01, rng)
    if rec.open_set_decision().rule.beta:
        with pytest.raises(DuplicateFace):
            rec.check_duplicates([NewFace(near, {}, {})], None)
        twin = unit_at(near, large + 0.008, rng)
        rec.store.create_person(person_id="twin", name="T", metadata={}, faces=[NewFace(twin, {}, {})], template=twin)
        rec.check_duplicates([NewFace(near, {}, {})], None)


def unit_at(v: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at cosine ``cos`` from ``v`` in a random direction."""
    other = rng.normal(size=v.shape).astype(np.float32)
    other -= (other @ v) * v
    other /= np.linalg.norm(other)
    return (cos * v + np.sqrt(1 - cos ** 2) * other).astype(np.float32)


def test_every_caller_stores_text_in_its_canonical_form(rec):
    """Not only the API: `enroll import` names people after folders, and macOS writes those decomposed."""
    person, _ = rec.enroll(images=[fixture_bytes("people/Kit_Harington/0001.jpg")], name=" Rene\u0301e ",
                           person_id=" renee ", metadata={"k": "v"})
    assert (person.id, person.name) == ("renee", "Ren\u00e9e")
    assert [p.id for p in rec.list_persons(limit=5, q="ren\u00e9e")[0]] == ["renee"]
    for name in ("\u200b", "a\x00b", "\ud800", "İ" * 200):
        with pytest.raises(ValidationError):
            rec.update_person("renee", name=name)
    with pytest.raises(ValidationError):
        rec.update_person("renee", metadata={"k\x00": 1})
    assert rec.update_person("renee", name="Rene\u0301e L.").name == "Ren\u00e9e L."


def test_a_target_fpir_the_rule_was_not_calibrated_for_stops_the_start(rec):
    """Not a 500 on the first identify: the service refuses to start with a named configuration error."""
    with pytest.raises(ConfigError, match="identify_target_far"):
        Recognizer(rec.pipeline, rec.store, rec.calibration, Policy(identify_target_far=0.2))
    assert Recognizer(rec.pipeline, rec.store, rec.calibration, Policy(identify_target_far=0.003))
