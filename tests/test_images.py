import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from service.core.images import decode_image
from service.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

from .conftest import fixture_bytes

LIMITS = {"max_bytes": 20_000_000, "max_pixels": 50_000_000}


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(io.BytesIO(fixture_bytes("people/Kit_Harington/0002.jpg"))).convert("RGB")


@pytest.mark.parametrize("name", ["compreface__corrupted.png", "compreface__empty.png",
                                  "compreface__truncated.jpg"])
def test_broken_files_are_invalid_image(name):
    with pytest.raises(InvalidImage):
        decode_image(fixture_bytes(f"invalid/{name}"), **LIMITS)


def test_zero_bytes_and_non_images_are_invalid():
    with pytest.raises(InvalidImage):
        decode_image(b"", **LIMITS)
    with pytest.raises(InvalidImage):
        decode_image(b"%PDF-1.4 hello, not a picture", **LIMITS)


def test_same_photo_in_png_webp_bmp_decodes_alike():
    arrays = [decode_image(fixture_bytes(f"formats/compreface__einstein.{ext}"), **LIMITS)
              for ext in ("png", "webp", "bmp")]
    assert all(a.shape == arrays[0].shape and a.dtype == np.uint8 and a.shape[2] == 3 for a in arrays)
    # The three files were converted from one source photo (see formats/_manifest.csv): same picture,
    # small codec differences.
    for other in arrays[1:]:
        assert np.abs(arrays[0].astype(int) - other.astype(int)).mean() < 4.0


def test_byte_limit_is_checked_before_decoding(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(PayloadTooLarge) as err:
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**9)
    assert err.value.details["bytes"] == len(data)


def test_pixel_limit(photo):
    with pytest.raises(PayloadTooLarge):
        decode_image(encode(photo, "PNG"), max_bytes=10**9, max_pixels=photo.width * photo.height - 1)


def test_decompression_bomb_is_refused_without_decoding():
    """A 200-byte PNG whose header claims 60000 x 60000 pixels (3.6 gigapixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))
    with pytest.raises(PayloadTooLarge):
        decode_image(bomb, **LIMITS)


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"),
                                      ("CMYK", "JPEG"), ("I;16", "PNG"), ("RGB", "GIF")])
def test_every_mode_becomes_rgb_with_the_same_content(photo, mode, fmt):
    if mode == "I;16":
        grey = np.asarray(photo.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
        image = Image.fromarray(grey.astype("<u2"))
        assert image.mode.startswith("I;16")
    else:
        image = photo.convert(mode)
    out = decode_image(encode(image, fmt), **LIMITS)
    assert out.shape == (photo.height, photo.width, 3) and out.dtype == np.uint8
    reference = np.asarray(photo.convert("L"), dtype=float)
    # Same picture, not a blank or clipped one: greyscale content within a small error.
    assert np.abs(out.astype(float).mean(axis=2) - reference).mean() < 12


def test_exif_orientation_is_applied(photo):
    # Store the pixels rotated and let EXIF (orientation 6 = rotate 90 CW to display) undo it.
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode_image(encode(stored, "JPEG", exif=exif, quality=95), **LIMITS)
    assert out.shape[:2] == (photo.height, photo.width)
    upright = decode_image(encode(photo, "JPEG", quality=95), **LIMITS)
    assert np.abs(out.astype(int) - upright.astype(int)).mean() < 4


def test_unsupported_format_is_415(photo):
    with pytest.raises(UnsupportedMediaType):
        decode_image(encode(photo, "PPM"), **LIMITS)


def test_a_16_bit_bomb_under_the_pixel_limit_decodes_within_a_small_memory_budget():
    """A ~100 kB 16-bit grey PNG of 7000 x 7000 px: once ~1.1 GB and 3.6 s of float64 copies per request."""
    import tracemalloc

    image = Image.fromarray(np.full((7000, 7000), 40000, np.uint16))
    data = encode(image, "PNG")
    assert len(data) < 500_000 and image.mode.startswith("I;16")
    tracemalloc.start()
    rgb = decode_image(data, **LIMITS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rgb.shape == (7000, 7000, 3) and rgb[0, 0, 0] == 40000 >> 8
    assert peak < 350 * 2**20, peak  # numpy's share; PIL's own 98 MB buffer comes on top


def test_decoding_beyond_the_memory_budget_is_payload_too_large():
    image = Image.fromarray(np.zeros((1000, 1000), np.float32), mode="F")
    data = encode(image, "TIFF")
    err = pytest.raises(PayloadTooLarge, decode_image, data, max_bytes=10**9, max_pixels=10**9,
                        max_decoded_bytes=5_000_000)
    assert err.value.details["decoded_bytes"] == 7_000_000 and err.value.details["mode"] == "F"
    assert decode_image(data, max_bytes=10**9, max_pixels=10**9).shape == (1000, 1000, 3)


def test_heic_from_an_iphone_decodes_and_its_face_is_found(client):
    """HEIC is what iPhones upload. Encoded here from a fixture photo with pillow-heif (libheif)."""
    from .conftest import CLIENT
    photo = Image.open(io.BytesIO(fixture_bytes("people/Kit_Harington/0001.jpg")))
    heic = encode(photo, "HEIF", quality=90)
    assert heic[4:12] in (b"ftypheic", b"ftypmif1", b"ftypheix")
    rgb = decode_image(heic, **LIMITS)
    assert rgb.shape == (photo.height, photo.width, 3)
    assert np.abs(rgb.astype(int) - np.asarray(photo.convert("RGB"), int)).mean() < 6  # lossy, same picture
    r = client.post("/v1/detect", data={"image": (io.BytesIO(heic), "photo.heic")}, headers=CLIENT,
                    content_type="multipart/form-data")
    assert r.status_code == 200 and len(r.get_json()["faces"]) >= 1


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding():
    """5,000 empty scans on 7000 x 7000 pixels: ~50 kB that cost libjpeg a pass over 766k blocks per scan."""
    import time

    from service.core.images import MAX_JPEG_SCANS

    from .hostile import scan_bomb
    small = scan_bomb(2000, 300)
    started = time.process_time()
    Image.open(io.BytesIO(small)).load()  # what it costs when nothing counts the scans
    unchecked = time.process_time() - started
    bomb = scan_bomb(7000, 5000)
    assert len(bomb) < 300_000
    started = time.process_time()
    err = pytest.raises(PayloadTooLarge, decode_image, bomb, **LIMITS)
    assert time.process_time() - started < 0.05 < unchecked  # and the real bomb is ~200 times `small`'s work
    assert err.value.details == {"scans": MAX_JPEG_SCANS + 1, "max_scans": MAX_JPEG_SCANS}


def test_scans_are_counted_as_libjpeg_reads_them(photo):
    from service.core.images import MAX_JPEG_SCANS, jpeg_structure

    def jpeg_scans(data: bytes, limit: int) -> int:
        return jpeg_structure(data, max_scans=limit).scans

    from .hostile import scan_bomb
    assert jpeg_scans(encode(photo, "JPEG"), 100) == 1
    progressive = encode(photo, "JPEG", progressive=True)
    assert jpeg_scans(progressive, 100) == progressive.count(b"\xff\xda") == 10
    # An EXIF thumbnail (a whole JPEG inside APP1) is a segment's payload, not scans of the image.
    exif = Image.Exif()
    exif[0x010E] = "x"
    thumb = encode(photo.resize((160, 90)), "JPEG", progressive=True)
    with_thumb = progressive[:2] + b"\xff\xe1" + struct.pack(">H", len(thumb) + 8) + b"Exif\0\0" + thumb + \
        progressive[2:]
    assert jpeg_scans(with_thumb, 100) == 10
    # Stray bytes before a marker: libjpeg skips them with a warning and reads on, so the count does too.
    bomb = scan_bomb(500, MAX_JPEG_SCANS + 1)
    at = bomb.find(b"\xff\xda")
    hidden = bomb[:at] + b"\x00junk" + bomb[at:]
    assert jpeg_scans(hidden, MAX_JPEG_SCANS) == MAX_JPEG_SCANS + 1
    pytest.raises(PayloadTooLarge, decode_image, hidden, **LIMITS)
    assert decode_image(scan_bomb(500, MAX_JPEG_SCANS), **LIMITS).shape == (500, 500, 3)  # at the limit


def test_float_tiffs_decode_by_their_range(photo):
    """A float image in [0, 1] (what scientific and HDR tools write) decoded black when read as [0, 255]."""
    grey = np.asarray(photo.convert("L")).astype(np.float32)
    for values in (grey / 255, grey, grey * 257):
        rgb = decode_image(encode(Image.fromarray(values, mode="F"), "TIFF"), **LIMITS)
        assert np.abs(rgb[:, :, 0].astype(int) - grey).max() <= 1
    holes = np.where(grey > 200, np.nan, grey / 255).astype(np.float32)
    holes[0, :3] = (np.inf, -np.inf, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        rgb = decode_image(encode(Image.fromarray(holes, mode="F"), "TIFF"), **LIMITS)
    kept = grey <= 200
    kept[0, :3] = False
    assert np.abs(rgb[:, :, 0][kept].astype(int) - grey[kept]).max() <= 1 and (rgb[~kept] == 0).all()



@pytest.mark.parametrize("what,filler,error", [
    ("a million empty comments", b"\xff\xfe\x00\x02" * 1_000_000, PayloadTooLarge),
    ("a million empty APP5 segments", b"\xff\xe5\x00\x02" * 1_000_000, PayloadTooLarge),
    ("4 MB of fill bytes", b"\xff" * 4_000_000, InvalidImage),
    ("4 MB of stuffed zeros", b"\xff\x00" * 2_000_000, InvalidImage),
])
def test_a_jpeg_header_that_costs_the_parser_seconds_is_refused_in_milliseconds(photo, what, filler, error):
    """Pillow parses a JPEG's header in a Python loop, a turn per segment or stray byte (1.1-2.5 s per 4 MB
    of these); the marker walk that refuses them is linear regex searches."""
    import time
    jpeg = encode(photo, "JPEG")
    bomb = jpeg[:2] + filler + jpeg[2:]
    started = time.process_time()
    pytest.raises(error, decode_image, bomb, **LIMITS)
    assert time.process_time() - started < 0.2
    # A fill run that ends in no marker: a backtracking pattern would take minutes here.
    started = time.process_time()
    pytest.raises((InvalidImage, PayloadTooLarge), decode_image, jpeg[:2] + b"\xff" * 1_000_000 + b"\x00" * 10,
                  **LIMITS)
    assert time.process_time() - started < 0.2
    assert decode_image(jpeg[:2] + b"\xff\xfe\x00\x02" * 100 + b"\xff" * 100 + jpeg[2:], **LIMITS).shape[2] == 3


def png_chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_chunks_and_gif_blocks_that_cost_the_parser_seconds_are_refused(photo):
    """Pillow walks a PNG's chunks and a GIF's extension blocks in Python: 300,000 empty chunks (3.6 MB)
    took 1.2 s, a million 1-byte comment blocks (2 MB) 0.66 s; a 15 MB upload four times that."""
    import time
    png, gif = encode(photo, "PNG"), encode(photo, "GIF", comment=b"x" * 3000)
    png_bomb = png[:33] + png_chunk(b"abCd") * 300_000 + png[33:]  # after the IHDR chunk
    at = 13 + (3 << ((gif[10] & 7) + 1))  # the first block, after the header and the global palette
    assert gif[at] == 0x21
    gif_bomb = gif[:at] + b"\x21\xfe" + b"\x01x" * 1_000_000 + b"\x00" + gif[at:]
    for bomb, what in ((png_bomb, "chunks"), (gif_bomb, "blocks")):
        started = time.process_time()
        err = pytest.raises(PayloadTooLarge, decode_image, bomb, **LIMITS)
        assert time.process_time() - started < 0.1 and err.value.details[what] > err.value.details[f"max_{what}"]
    for ok in (png, gif, png[:33] + png_chunk(b"abCd") * 5_000 + png[33:]):  # what real files do, and more
        assert decode_image(ok, **LIMITS).shape == (photo.height, photo.width, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "I;16", "I", "F"])
def test_every_tiff_mode_pillow_writes_decodes_to_the_same_picture(photo, mode):
    """TIFF carries more pixel modes than any other format we take; each must come out as the photo, not
    black, white or garbage (a float TIFF in [0, 1] came out black)."""
    grey = np.asarray(photo.convert("L"))
    if mode in ("I;16", "I", "F"):
        scale = {"I;16": 257, "I": 257, "F": 1 / 255}[mode]
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        image = Image.fromarray((grey.astype(np.float64) * scale).astype(dtype), mode=None if mode == "I;16" else mode)
    else:
        image = photo.convert(mode)
    assert image.mode == mode
    rgb = decode_image(encode(image, "TIFF"), **LIMITS)
    assert rgb.shape == (photo.height, photo.width, 3)
    mean_error = np.abs(rgb.astype(int).mean(axis=2) - grey).mean()
    assert mean_error < (12 if mode == "P" else 3), mean_error  # P: a 256-colour palette
