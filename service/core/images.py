"""Bytes from a client -> an upright RGB uint8 array, or a clear error.

Phones store portraits sideways and record the rotation in EXIF, so orientation is applied before anything
looks at the pixels. Size is checked twice: the byte count before decoding and the pixel count from the header
before the pixels are decompressed, so a small file that expands to gigabytes (a decompression bomb) is refused
without allocating it. Pixels alone do not bound memory: a 16-bit or float image needs more bytes per pixel,
so the decoded size (the decoder's buffer plus the RGB result) is held to a budget too, and high bit depths
are converted with integer arithmetic instead of float64 copies.

Bytes and pixels do not bound the *work* either: a progressive JPEG is decoded scan by scan, each scan a pass
over every block of the image, and a scan can be a few bytes. 5,000 empty scans on a 7000x7000 canvas (~200 kB)
took 30 s of CPU, so the scans are counted from the marker structure (a regex over the bytes, no decoding)
and a JPEG with more than ``MAX_JPEG_SCANS`` is refused before Pillow or libjpeg sees it. Encoders write 1
(baseline) to about 10 (libjpeg's progressive script, mozjpeg's optimised ones): 64 leaves room for odd
encoders and costs at most ~0.4 s on the largest image the pixel limit lets in. The same walk bounds what
Pillow's header parser loops over in Python: segments and stray bytes.
"""
from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

# What PIL may decode for us. Anything else (PDF, PSD, EPS, ...) is refused as unsupported.
# HEIF/HEIC is what iPhones send: PIL reads it through pillow-heif (libheif, in the wheel).
pillow_heif.register_heif_opener()
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF", "HEIF"})
# Bytes per pixel of PIL's decoded buffer, by mode (the rest: 4, PIL's widest common case).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4,
               "CMYK": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
DEFAULT_MAX_DECODED_BYTES = 384 * 1024 * 1024
MAX_JPEG_SCANS = 64
# Segments and stray bytes (fill, junk between segments) cost Pillow's header parser a Python loop turn each:
# 1 million empty COM segments (4 MB) took 1.1 s, 4 MB of fill bytes 2.5 s, before any pixel was decoded.
# Photos have a few dozen segments and no stray bytes, and an encoder's progressive file 2 per scan.
MAX_JPEG_SEGMENTS = 10_000
MAX_JPEG_STRAY_BYTES = 64 * 1024
# A marker: its code byte (not 0x00 stuffing, not 0xFF fill) right after a 0xFF. Fixed width, so the search is
# linear on any input (a pattern with a repeated 0xFF could backtrack quadratically on a long fill run).
_MARKER = re.compile(rb"(?<=\xff)[\x01-\xfe]")
# Inside a scan's entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything else
# is the next marker.
_AFTER_SCAN = re.compile(rb"(?<=\xff)[\x01-\xcf\xd8-\xfe]")
_SOS, _EOI = 0xDA, 0xD9
_NO_LENGTH = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RSTn: markers without a segment


@dataclass(frozen=True)
class JpegStructure:
    segments: int     # markers, scans included, up to MAX_JPEG_SEGMENTS + 1
    scans: int        # SOS markers, up to the scan limit + 1
    stray_bytes: int  # bytes outside any segment before the last marker walked (fill and junk)


def jpeg_structure(data: bytes, *, max_scans: int = MAX_JPEG_SCANS,
                   max_segments: int = MAX_JPEG_SEGMENTS) -> JpegStructure:
    """The marker structure of the JPEG in ``data`` as libjpeg and Pillow read it, walked until a limit is
    passed: segment lengths are followed (no payload is read, so an EXIF thumbnail's scans are not counted),
    each scan's entropy-coded data is jumped with one regex search, and stray bytes are skipped as both
    decoders skip them (so they cannot hide a scan) and counted. Microseconds per marker, linear in the
    bytes."""
    segments = scans = stray = 0
    at, end = 2, len(data)
    while segments <= max_segments and scans <= max_scans:
        found = _MARKER.search(data, at + 1)  # its 0xFF at `at` or later, not in the payload before
        if found is None:
            stray += max(end - at, 0)  # Pillow reads through to the end looking for one
            break
        stray += max(found.start() - 1 - at, 0)
        marker, at = data[found.start()], found.end()
        segments += 1
        if marker == _EOI:
            break
        if marker in _NO_LENGTH:
            continue
        if at + 2 > end:
            break
        at += struct.unpack_from(">H", data, at)[0]
        if marker == _SOS:
            scans += 1
            entropy = _AFTER_SCAN.search(data, at + 1)
            if entropy is None:
                break
            at = entropy.start() - 1
    return JpegStructure(segments, scans, stray)


def _refuse_costly_jpeg(data: bytes, max_scans: int) -> None:
    """Before Pillow parses the header: its parse, then libjpeg's decode, cost work the bytes do not bound."""
    found = jpeg_structure(data, max_scans=max_scans)
    if found.scans > max_scans:
        raise PayloadTooLarge(f"the JPEG has more than {max_scans} scans: too much work to decode",
                              details={"scans": found.scans, "max_scans": max_scans})
    if found.segments > MAX_JPEG_SEGMENTS:
        raise PayloadTooLarge(f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments: too much work to decode",
                              details={"segments": found.segments, "max_segments": MAX_JPEG_SEGMENTS})
    if found.stray_bytes > MAX_JPEG_STRAY_BYTES:
        raise InvalidImage(f"the JPEG has {found.stray_bytes} bytes outside its segments",
                           details={"stray_bytes": found.stray_bytes, "max_stray_bytes": MAX_JPEG_STRAY_BYTES})


# PNG chunks and GIF blocks before the first image are parsed by Pillow in Python too, a few microseconds
# each: 300,000 empty PNG chunks (3.6 MB) took 1.2 s, a million 1-byte GIF comment blocks (2 MB) 0.66 s.
# A PNG may have one chunk per KiB (encoders write 8-64 KiB IDAT chunks; real files: a few dozen chunks).
MAX_CHUNKS = 10_000
_PNG, _GIF = b"\x89PNG\r\n\x1a\n", (b"GIF87a", b"GIF89a")


def png_chunks(data: bytes, limit: int) -> int:
    """PNG chunks up to IEND, counted up to ``limit`` + 1 (the walk follows each chunk's length)."""
    count, at, end = 0, len(_PNG), len(data)
    while count <= limit and at + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, at)
        count += 1
        if kind == b"IEND":
            break
        at += 12 + length
    return count


def gif_blocks(data: bytes, limit: int) -> int:
    """Extension blocks and their sub-blocks before the first image, counted up to ``limit`` + 1 (what
    Pillow reads in Python before it hands the image data to its decoder)."""
    if len(data) < 13:
        return 0
    palette = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0  # the global colour table, when there is one
    count, at, end = 0, 13 + palette, len(data)
    while count <= limit and at < end and data[at] == 0x21:  # an extension: label, then sub-blocks to a 0
        at += 2
        while count <= limit and at < end:
            count += 1
            size = data[at]
            at += 1 + size
            if size == 0:
                break
    return count


def _refuse_costly_container(data: bytes) -> None:
    """Before Pillow opens a PNG or a GIF: what its parser would loop over, bounded."""
    if data.startswith(_PNG):
        what, limit = "chunks", max(MAX_CHUNKS, len(data) >> 10)
        count = png_chunks(data, limit)
    elif data.startswith(_GIF):
        what, limit = "blocks", MAX_CHUNKS
        count = gif_blocks(data, limit)
    else:
        return
    if count > limit:
        raise PayloadTooLarge(f"the image has more than {limit} {what}: too much work to open",
                              details={what: count, f"max_{what}": limit})


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """What decoding costs at the peak: PIL's buffer, plus the RGB array we make from it."""
    return width * height * (_MODE_BYTES.get(mode, 4) + 3)


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
                 max_jpeg_scans: int = MAX_JPEG_SCANS) -> np.ndarray:
    """Decode ``data`` into an (H, W, 3) RGB uint8 array with EXIF orientation applied."""
    if not data:
        raise InvalidImage("the image is empty", details={"bytes": 0})
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is larger than {max_bytes} bytes",
                              details={"bytes": len(data), "max_bytes": max_bytes})
    if data[:3] == b"\xff\xd8\xff":  # what Pillow opens as JPEG (or MPO)
        _refuse_costly_jpeg(data, max_jpeg_scans)
    _refuse_costly_container(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in SUPPORTED_FORMATS:
                raise UnsupportedMediaType(f"image format {image.format} is not supported",
                                           details={"format": image.format,
                                                    "supported": sorted(SUPPORTED_FORMATS)})
            width, height = image.size
            if width * height > max_pixels:
                raise PayloadTooLarge(f"the image has {width * height} pixels, more than {max_pixels}",
                                      details={"width": width, "height": height, "max_pixels": max_pixels})
            if width < 1 or height < 1:
                raise InvalidImage("the image has no pixels")
            cost = decoded_bytes(image.mode, width, height)
            if cost > max_decoded_bytes:
                raise PayloadTooLarge(f"decoding this {image.mode} image would take {cost} bytes, more than "
                                      f"{max_decoded_bytes}", details={"mode": image.mode, "decoded_bytes": cost,
                                                                       "max_decoded_bytes": max_decoded_bytes})
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of an upright photo (0.7 ms)
            return _to_rgb(image)
    except (PayloadTooLarge, UnsupportedMediaType, InvalidImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge("the image decompresses to too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the file is not a recognised image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        # PIL reports truncated and corrupt data through these; the message is PIL's own, safe to return.
        raise InvalidImage(f"the image could not be decoded: {exc}") from exc


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):
        # 16-bit greyscale: PIL's convert("RGB") clips at 255 instead of scaling, which turns most 16-bit
        # photos white. The high byte is the 8-bit value (integer arithmetic: no float copies of the image).
        words = np.asarray(image).astype("<u2", copy=False)
        grey = words.view(np.uint8).reshape(words.shape + (2,))[:, :, 1]  # the high byte, no temporaries
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "I":
        arr = np.asarray(image)
        top = 65535.0 if float(arr.max()) > 255 else 255.0
        grey = np.clip(arr * np.float32(255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        # Float images come as [0, 1] (scientific and HDR tools; it decoded black when read as [0, 255]), as
        # [0, 255] or as 16-bit counts, the range told by the largest value; NaN and infinities are black.
        values = np.nan_to_num(np.asarray(image, np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # a copy
        top = float(values.max(initial=0.0))
        np.multiply(values, np.float32(255.0 / (1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0)),
                    out=values)
        grey = np.clip(values, 0, 255, out=values).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
