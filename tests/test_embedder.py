import io

import numpy as np
import pytest
from PIL import Image

from .conftest import fixture_bytes

SAME = [("people/Barack_Obama/0001.jpg", "people/Barack_Obama/0002.jpg"),
        ("people/Barack_Obama/0001.jpg", "people/Barack_Obama/0003.jpg"),
        ("people/Joe_Biden/0001.jpg", "people/Joe_Biden/0002.jpg"),
        ("people/Kit_Harington/0001.jpg", "people/Kit_Harington/0002.jpg"),
        ("people/Rose_Leslie/0001.jpg", "people/Rose_Leslie/0002.jpg"),
        ("people/Alex_Lacamoire/0001.jpg", "people/Alex_Lacamoire/0003.jpg")]
DIFFERENT = [("people/Barack_Obama/0001.jpg", "people/Joe_Biden/0001.jpg"),
             ("people/Kit_Harington/0001.jpg", "people/Rose_Leslie/0001.jpg"),
             ("people/Kit_Harington/0002.jpg", "people/Alex_Lacamoire/0001.jpg"),
             ("people/Rose_Leslie/0002.jpg", "people/Lin_Manuel_Miranda/0001.jpg"),
             ("people/Joe_Biden/0002.jpg", "people/Alex_Lacamoire/0003.jpg")]


@pytest.fixture(scope="module")
def threshold(recognizer):
    return recognizer.calibration.verify_threshold(recognizer.model_id)


@pytest.mark.parametrize("a,b", SAME)
def test_same_person_is_above_threshold(embed_one, threshold, a, b):
    assert float(embed_one(a) @ embed_one(b)) > threshold


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_people_are_below_threshold(embed_one, threshold, a, b):
    assert float(embed_one(a) @ embed_one(b)) < threshold


def test_embeddings_are_unit_length_and_model_sized(recognizer, embed_one):
    e = embed_one("people/Joe_Biden/0001.jpg")
    assert e.shape == (recognizer.pipeline.embedder.dim,)
    assert abs(float(np.linalg.norm(e)) - 1) < 1e-5


def test_batched_equals_one_by_one(recognizer):
    rgb = recognizer.pipeline.decode(fixture_bytes("multi_face/compreface__011_3.jpg"))
    faces = recognizer.pipeline.detector.detect(rgb)
    batched = recognizer.pipeline.embedder.get(rgb, faces)
    single = np.stack([recognizer.pipeline.embedder.get(rgb, [f])[0] for f in faces])
    assert batched.shape == (3, recognizer.pipeline.embedder.dim)
    assert np.allclose(batched, single, atol=1e-4)


def test_exif_rotated_copy_embeds_like_the_upright_photo(recognizer, embed_one):
    """A phone photo stored sideways with an EXIF orientation tag must give the same identity vector."""
    upright = Image.open(io.BytesIO(fixture_bytes("people/Rose_Leslie/0002.jpg"))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90 CW; display rotates it back
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_270).save(buf, "JPEG", quality=95, exif=exif)
    ref = io.BytesIO()
    upright.save(ref, "JPEG", quality=95)

    def embed(data: bytes) -> np.ndarray:
        rgb = recognizer.pipeline.decode(data)
        return recognizer.pipeline.embedder.get(rgb, recognizer.pipeline.detector.detect(rgb)[:1])[0]
    assert float(embed(buf.getvalue()) @ embed(ref.getvalue())) >= 0.99
