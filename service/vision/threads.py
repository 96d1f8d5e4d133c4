"""OpenCV's worker threads, a process-wide setting: cv2.resize and cv2.warpAffine use them. On a few cores
a request thread that fans out into OpenCV's pool competes with the other request threads and with
OpenVINO's, so the service sets the count once at start (``opencv_threads``; measured in bench/latency.py)."""
from __future__ import annotations

import cv2


def set_opencv_threads(count: int) -> None:
    """``count`` threads for OpenCV's parallel loops; 0 leaves OpenCV's default (one per core)."""
    if count > 0:
        cv2.setNumThreads(count)
