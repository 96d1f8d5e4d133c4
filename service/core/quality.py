"""The enrollment quality gate: a bad enrollment photo hurts every later verify of that person, so enrollment
is stricter than matching. Each measure has a named check; a rejection lists every check that failed.

* ``probability``: MTCNN's face confidence.
* ``size``: shorter side of the face box in pixels of the original image.
* ``blur``: variance of the Laplacian of the grey 160 px face crop (low = soft or motion-blurred), measured
  by the vision layer (``FaceCrops.sharpness``): pixels are its business, the limit is ours.
* ``yaw`` / ``pitch`` / ``roll``: pose from the 5 landmarks. ``yaw`` is the nose's horizontal offset from
  the eyes' midpoint in inter-eye distances (0 frontal, about 0.5 at a strong profile); ``pitch`` the nose's
  height between the eye line and the mouth line (about 0.5 frontal); ``roll`` the eye line's angle in degrees.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .records import Face


@dataclass(frozen=True)
class QualityLimits:
    min_probability: float = 0.95
    min_face_size: float = 64.0
    min_blur: float = 25.0
    max_yaw: float = 0.45
    pitch_range: tuple[float, float] = (0.2, 0.8)
    max_roll: float = 35.0


def measure(face: Face, blur: float) -> dict[str, float]:
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    eye_mid = (left_eye + right_eye) / 2
    mouth_mid = (mouth_left + mouth_right) / 2
    eye_dist = max(float(np.linalg.norm(right_eye - left_eye)), 1e-6)
    dx, dy = right_eye - left_eye
    roll = math.degrees(math.atan2(dy, dx))
    # Project the nose onto the eye line's frame, so a tilted (rolled) head does not read as yaw.
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rel_nose = np.array([[c, -s], [s, c]]) @ (nose - eye_mid)
    rel_mouth = np.array([[c, -s], [s, c]]) @ (mouth_mid - eye_mid)
    yaw = float(rel_nose[0] / eye_dist)
    pitch = float(rel_nose[1] / rel_mouth[1]) if rel_mouth[1] > 1e-6 else 0.0
    return {"probability": round(face.probability, 4), "size": round(face.size, 1), "blur": round(blur, 1),
            "yaw": round(yaw, 3), "pitch": round(pitch, 3), "roll": round(roll, 1)}


def failures(q: dict[str, float], limits: QualityLimits) -> list[dict[str, object]]:
    """The checks ``q`` fails, each with its measured value and the limit: empty when the face is fine."""
    out: list[dict[str, object]] = []

    def check(name: str, ok: bool, value: float, limit: object) -> None:
        if not ok:
            out.append({"check": name, "value": value, "limit": limit})
    check("probability", q["probability"] >= limits.min_probability, q["probability"], limits.min_probability)
    check("face_size", q["size"] >= limits.min_face_size, q["size"], limits.min_face_size)
    check("blur", q["blur"] >= limits.min_blur, q["blur"], limits.min_blur)
    check("pose_yaw", abs(q["yaw"]) <= limits.max_yaw, q["yaw"], limits.max_yaw)
    check("pose_pitch", limits.pitch_range[0] <= q["pitch"] <= limits.pitch_range[1], q["pitch"],
          list(limits.pitch_range))
    check("pose_roll", abs(q["roll"]) <= limits.max_roll, q["roll"], limits.max_roll)
    return out
