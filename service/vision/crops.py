"""The model-independent crops of an enrollment face (``core.ports.FaceCrops``): one to measure sharpness
on, one to keep. The stored crop keeps context around the face, so it can be detected and re-aligned for any
model later (``enroll reindex``), not only for the one that made it."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from ..core.records import Face
from .align import crop_face

QUALITY_CROP = 160                         # the crop blur is measured on (pixels)
STORED_CROP, STORED_CROP_MARGIN = 192, 64  # stored face crop: the face is the middle 128 px


class OpenCvCrops:
    def __init__(self, margin: int = 32) -> None:
        self.margin = margin

    def sharpness(self, rgb: np.ndarray, face: Face) -> float:
        """Variance of the Laplacian of the grey 160 px crop (low = soft or motion-blurred)."""
        grey = cv2.cvtColor(crop_face(rgb, face.box, QUALITY_CROP, self.margin), cv2.COLOR_RGB2GRAY)
        if grey.shape != (QUALITY_CROP, QUALITY_CROP):
            grey = cv2.resize(grey, (QUALITY_CROP, QUALITY_CROP), interpolation=cv2.INTER_AREA)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    def stored_crop(self, rgb: np.ndarray, face: Face) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(crop_face(rgb, face.box, STORED_CROP, STORED_CROP_MARGIN)).save(buf, "JPEG", quality=90)
        return buf.getvalue()
