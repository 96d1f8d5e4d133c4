"""MTCNN's box arithmetic in numpy, written to give facenet-pytorch's answers (``detect_face.py``): the same
area resampling, the same two flavours of non-maximum suppression, the same off-by-one conventions. Boxes are
float32 ``(x1, y1, x2, y2)`` rows, as there.

Why the care: the detector is tested against facenet-pytorch's MTCNN (same faces, IoU >= 0.95, landmarks
within 1 px); a resampler or NMS that is merely "equivalent" shifts scores near the thresholds and changes
which faces are found.
"""
from __future__ import annotations

import cv2
import numpy as np


def _windows(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive average pooling windows (what ``interpolate(mode="area")`` is): output cell ``i`` of
    ``out`` averages input ``[floor(i*n/out), ceil((i+1)*n/out))`` of a span of ``n``. Shapes (k, out)."""
    i = np.arange(out, dtype=np.int64)[None, :]
    n = length.astype(np.int64)[:, None]
    lo = i * n // out
    hi = -((-(i + 1) * n) // out)
    return start.astype(np.int64)[:, None] + lo, start.astype(np.int64)[:, None] + hi


def integral(rgb: np.ndarray) -> np.ndarray:
    """(H+1, W+1, 3) summed-area table of a uint8 image, exact: int32 while the total fits, else float64.
    One per image serves every pyramid level and every crop."""
    h, w = rgb.shape[:2]
    depth = cv2.CV_32S if h * w * 255 < 2**31 else cv2.CV_64F
    table = cv2.integral(np.ascontiguousarray(rgb), sdepth=depth)
    return np.asarray(table).reshape(h + 1, w + 1, -1)


def area_resize(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole image of ``table`` area-resampled to (height, width, 3) float32, as torch does it: whole
    rows of the table gathered first (contiguous), then the columns."""
    h, w = table.shape[0] - 1, table.shape[1] - 1
    r0, r1 = (a[0] for a in _windows(np.array([0]), np.array([h]), height))
    c0, c1 = (a[0] for a in _windows(np.array([0]), np.array([w]), width))
    strip = table[r1] - table[r0]  # (height, w + 1, 3): column prefix sums of each output row's window
    sums = strip[:, c1] - strip[:, c0]
    counts = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(np.float32)
    return sums.astype(np.float32) / counts[:, :, None]


def crops_resized(table: np.ndarray, rects: np.ndarray, size: int) -> np.ndarray:
    """Each rect ``(y0, y1, x0, x1)`` (half-open, non-empty, inside the image) area-resampled to size x size:
    (n, 3, size, size) float32, the networks' layout. One gather for every corner of every crop: the table's
    pixels viewed as single opaque elements, which ``np.take`` gathers twice as fast as a (row, column)
    fancy index gathers its 3-channel rows."""
    r0, r1 = _windows(rects[:, 0], rects[:, 1] - rects[:, 0], size)
    c0, c1 = _windows(rects[:, 2], rects[:, 3] - rects[:, 2], size)
    width, channels = table.shape[1], table.shape[2]
    pixels = np.ascontiguousarray(table).view(np.dtype((np.void, table.itemsize * channels))).reshape(-1)
    rows = np.stack([r1, r0])[:, :, :, None] * width  # (2, n, size, 1): bottom and top edges
    cols = np.stack([c1, c0])[:, :, None, :]          # (2, n, 1, size): right and left edges
    corners = rows[:, None] + cols[None, :]            # (2, 2, n, size, size)
    g = np.take(pixels, corners).view(table.dtype).reshape(corners.shape + (channels,))
    sums = (g[0, 0] - g[1, 0]) - (g[0, 1] - g[1, 1])  # (n, size, size, 3)
    counts = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).astype(np.float32)
    return np.ascontiguousarray((sums.astype(np.float32) / counts[..., None]).transpose(0, 3, 1, 2))


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """torchvision's ``nms``: highest score first (stable on ties), areas without +1, drop IoU > threshold.
    Indices kept, in descending score order."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if not len(rest):
            continue
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > threshold]] = True
    return np.array(keep, np.int64)


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's numpy NMS in "Min" mode (the last stage): areas with +1, overlap over the smaller
    area, keep overlap <= threshold. Same ordering as its ``np.argsort``."""
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep: list[int] = []
    while order.size > 0:
        i = order[-1]
        keep.append(int(i))
        idx = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        order = idx[w * h / np.minimum(area[i], area[idx]) <= threshold]
    return np.array(keep, np.int64)


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """``bbreg``: each side moved by its regression times the box's size (+1 convention)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return np.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                     boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], axis=1)


def square(boxes: np.ndarray) -> np.ndarray:
    """``rerec``: each box grown to a square on its longer side, same centre."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    y1 = boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def crop_rects(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``pad``: boxes truncated to integers and clipped to the image, as half-open ``(y0, y1, x0, x1)``
    (its 1-based ``y-1:ey``). Also the mask of boxes whose crop is non-empty."""
    t = np.trunc(boxes).astype(np.int64)
    x = np.maximum(t[:, 0], 1)
    y = np.maximum(t[:, 1], 1)
    ex = np.minimum(t[:, 2], width)
    ey = np.minimum(t[:, 3], height)
    rects = np.stack([y - 1, ey, x - 1, ex], axis=1)
    return rects, (ey > y - 1) & (ex > x - 1)
