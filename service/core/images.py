"""Bytes from a client -> an upright RGB uint8 array, or a clear error.

Phones store portraits sideways and record the rotation in EXIF, so orientation is applied before anything
looks at the pixels. Size is checked twice: the byte count before decoding and the pixel count from the header
before the pixels are decompressed, so a small file that expands to gigabytes (a decompression bomb) is refused
without allocating it.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

# What PIL may decode for us. Anything else (PDF, PSD, EPS, ...) is refused as unsupported.
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF"})


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
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
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
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
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16/32-bit greyscale: PIL's convert("RGB") clips at 255 instead of scaling, which turns most
        # 16-bit photos white. Scale the used range down to 8 bits ourselves.
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
