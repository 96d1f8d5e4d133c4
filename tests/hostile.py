"""Hostile images made on the spot from the fixtures: the payloads of issue 19, built by the tests
themselves so each one is what it claims to be (its cost measured against the real decoder and detector)."""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from .conftest import FIXTURES


def scan_bomb(side: int, scans: int) -> bytes:
    """A progressive JPEG of ``side`` x ``side`` grey with ``scans`` scans in all, the ones added without data:
    each costs libjpeg a pass over every block (~6 ms at 7000 x 7000), each is 10 bytes."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "JPEG", progressive=True, quality=50)
    data = buf.getvalue()
    at = data.rfind(b"\xff\xda")
    header = data[at:at + 2 + struct.unpack_from(">H", data, at + 2)[0]]
    return data[:-2] + header * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def face_grid(per_side: int, cell: int = 125) -> bytes:
    """A JPEG of ``per_side`` x ``per_side`` faces: the centre of each LFW fixture photo, repeated."""
    photos = sorted((FIXTURES / "lfw").glob("*/*.jpg"))
    tiles = []
    for path in photos:
        with Image.open(path) as im:
            w, h = im.size
            tiles.append(np.asarray(im.convert("RGB").crop(((w - cell) // 2, (h - cell) // 2,
                                                            (w + cell) // 2, (h + cell) // 2))))
    rows = [np.concatenate([tiles[(r * per_side + c) % len(tiles)] for c in range(per_side)], axis=1)
            for r in range(per_side)]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
