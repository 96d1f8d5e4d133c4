"""Bytes from a client -> an upright RGB uint8 array, or a clear error.

Phones store portraits sideways and record the rotation in EXIF, so orientation is applied before anything
looks at the pixels. Size is checked twice: the byte count before decoding and the pixel count from the header
before the pixels are decompressed, so a small file that expands to gigabytes (a decompression bomb) is refused
without allocating it. Pixels alone do not bound memory: a 16-bit or float image needs more bytes per pixel,
so the decoded size (the decoder's buffer plus the RGB result) is held to a budget too, and high bit depths
are converted with integer arithmetic instead of float64 copies.
"""
from __future__ import annotations

import io
import warnings

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


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """What decoding costs at the peak: PIL's buffer, plus the RGB array we make from it."""
    return width * height * (_MODE_BYTES.get(mode, 4) + 3)


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int,
                 max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> np.ndarray:
    """Decode ``data`` into an (H, W, 3) RGB uint8 array with EXIF orientation applied."""
    if not data:
        raise InvalidImage("the image is empty", details={"bytes": 0})
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is larger than {max_bytes} bytes",
                              details={"bytes": len(data), "max_bytes": max_bytes})
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
    if mode in ("I", "F"):
        arr = np.asarray(image)
        top = 65535.0 if float(arr.max()) > 255 else 255.0
        grey = np.clip(arr * np.float32(255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
