"""MTCNN's three stages on ``runtime``'s networks, the rest in numpy: facenet-pytorch's ``detect_face`` for one image,
step for step (``boxes`` holds the arithmetic), so it finds the same faces without torch.

P-Net runs once per pyramid scale; R-Net and O-Net each run once, on the surviving candidates as one batch
(at most ``MAX_PROPOSALS`` and ``MAX_CANDIDATES``, the best-scored).
A caller that wants only large faces passes ``min_face``: the pyramid then starts at the first of the full
pyramid's scales whose window is at least that big, so its scales are a subset of the full search's and a
large face is found from the same scales.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import area_resize, crop_rects, crops_resized, integral, nms, nms_min, regress, square
from .runtime import Network

FACTOR = 0.709  # facenet-pytorch's pyramid step
# Candidates R-Net and O-Net take, the best-scored first: a bound on the work one photo can ask for. On 754 real
# photos (celeba_dev, the phone photos, the samples) R-Net got at most 913 proposals and O-Net 56 candidates,
# so they are never reached there; a grid of 400 faces sent 5,088 and 1,894 (2.5-4 s of one core).
MAX_PROPOSALS = 2048
MAX_CANDIDATES = 512


@dataclass(frozen=True)
class Found:
    """Faces in the pixels of the image MTCNN saw: boxes (n, 4), probabilities (n,), landmarks (n, 5, 2)."""
    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray

    @staticmethod
    def none() -> Found:
        return Found(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def pyramid(height: int, width: int, min_face: float, start_face: float | None = None) -> list[float]:
    """facenet-pytorch's scales for ``min_face``; with ``start_face``, only those whose 12 px window covers
    at least ``start_face`` pixels."""
    m = 12.0 / min_face
    side = min(height, width) * m
    scales, scale = [], m
    while side >= 12:
        scales.append(scale)
        scale *= FACTOR
        side *= FACTOR
    if start_face is not None:
        scales = [s for s in scales if 12.0 / s >= start_face]
    return scales


class Mtcnn:
    """The three networks and the stage thresholds."""

    def __init__(self, pnet: Network, rnet: Network, onet: Network, thresholds: tuple[float, float, float]) -> None:
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.thresholds = thresholds

    def detect(self, rgb: np.ndarray, min_face: float, start_face: float | None = None) -> Found:
        """Every face in ``rgb`` (H, W, 3 uint8) at least ``min_face`` px (or ``start_face``, see module)."""
        h, w = rgb.shape[:2]
        scales = pyramid(h, w, min_face, start_face)
        table = integral(rgb)
        boxes = self._proposals(table, h, w, scales)
        if not len(boxes):
            return Found.none()
        boxes = self._refine(table, boxes, w, h)
        if not len(boxes):
            return Found.none()
        return self._output(table, boxes, w, h)

    def _proposals(self, table: np.ndarray, h: int, w: int, scales: list[float]) -> np.ndarray:
        """Stage 1: P-Net over the pyramid; NMS 0.5 per scale, 0.7 over all; regressed and squared."""
        found = []
        for scale in scales:
            level = area_resize(table, int(h * scale + 1), int(w * scale + 1))
            reg, prob = self.pnet(level.transpose(2, 0, 1)[None])
            score = prob[0, 1]
            ys, xs = np.nonzero(score >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            s = np.float32(scale)
            q1 = np.floor((2 * cells + 1) / s)
            q2 = np.floor((2 * cells + 12) / s)
            cand = np.concatenate([q1, q2, score[ys, xs][:, None], reg[0][:, ys, xs].T], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found).astype(np.float32)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)[:MAX_PROPOSALS]]  # nms: best first
        bw = cand[:, 2] - cand[:, 0]
        bh = cand[:, 3] - cand[:, 1]
        moved = np.stack([cand[:, 0] + cand[:, 5] * bw, cand[:, 1] + cand[:, 6] * bh,
                          cand[:, 2] + cand[:, 7] * bw, cand[:, 3] + cand[:, 8] * bh], axis=1)
        return square(moved)

    def _crops(self, table: np.ndarray, boxes: np.ndarray, w: int, h: int,
               size: int) -> tuple[np.ndarray, np.ndarray]:
        rects, usable = crop_rects(boxes, w, h)
        return boxes[usable], crops_resized(table, rects[usable], size)

    def _refine(self, table: np.ndarray, boxes: np.ndarray, w: int, h: int) -> np.ndarray:
        """Stage 2: R-Net on 24 px crops of every proposal, one batch; keep > threshold, NMS 0.7, regress."""
        boxes, batch = self._crops(table, boxes, w, h, 24)
        if not len(boxes):
            return boxes
        reg, prob = self.rnet(batch)
        score = prob[:, 1]
        keep = score > self.thresholds[1]
        boxes, score, reg = boxes[keep], score[keep], reg[keep]
        pick = nms(boxes, score, 0.7)[:MAX_CANDIDATES]
        return square(regress(boxes[pick], reg[pick]))

    def _output(self, table: np.ndarray, boxes: np.ndarray, w: int, h: int) -> Found:
        """Stage 3: O-Net on 48 px crops, one batch: probability, box regression and the five landmarks."""
        boxes, batch = self._crops(table, boxes, w, h, 48)
        if not len(boxes):
            return Found.none()
        reg, marks, prob = self.onet(batch)
        score = prob[:, 1]
        keep = score > self.thresholds[2]
        boxes, score, reg, marks = boxes[keep], score[keep], reg[keep], marks[keep]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([bw * marks[:, :5] + boxes[:, :1] - 1, bh * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = regress(boxes, reg)
        pick = nms_min(boxes, score, 0.7)
        return Found(boxes[pick], score[pick], points[pick])
