"""The ONNX MTCNN (service/vision/mtcnn.py) against facenet-pytorch's MTCNN, its reference, on celeba_dev's
715 unaligned real photos; and the probe search (verify/identify's reduced pyramid) against the full search.

    .venv/bin/python -m bench.detector_agreement [--ratios 0.1 0.15 0.2]

Both detectors see the same copy (longest side capped at detect_max_side, as the service does). A photo
agrees when both find the same number of faces and every face of ours has a reference face with box IoU >=
0.95 and landmarks within 1 px (full-image pixels). The probe search agrees when its first (largest) face is
the full search's first face (IoU >= 0.95); where it is not, "same face, other box" counts those still on the
same face (IoU >= 0.5: the box differs because the skipped scales' candidates no longer take part in NMS).
Timings are per photo, one thread each (torch and OpenVINO), on a shared machine. Writes
bench/results/detector_agreement.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from service.config import load_settings
from service.core.images import decode_image
from service.vision.detector import FaceDetector

from .datasets import DATA, load_celeba

RESULTS = Path(__file__).resolve().parent / "results"
LIMITS = {"max_bytes": 1 << 26, "max_pixels": 1 << 26, "max_decoded_bytes": 1 << 30}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def reference_detector(settings):
    import torch
    from facenet_pytorch.models.mtcnn import MTCNN

    torch.set_num_threads(1)
    detection = settings.detection
    mtcnn = MTCNN(keep_all=True, min_face_size=detection.min_face, thresholds=list(detection.thresholds),
                  post_process=False, device="cpu")

    def detect(small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            boxes, _, points = mtcnn.detect(small, landmarks=True)
        return (np.zeros((0, 4)), np.zeros((0, 5, 2))) if boxes is None else (boxes, points)
    return detect


def compare(ours: list, boxes: np.ndarray, points: np.ndarray, scale: float) -> tuple[bool, float, float]:
    """(agrees, worst IoU, worst landmark distance in full-image px) for one photo."""
    worst_iou, worst_px = 1.0, 0.0
    for face in ours:
        if not len(boxes):
            return False, 0.0, float("inf")
        k = max(range(len(boxes)), key=lambda i: iou(face.box * scale, boxes[i]))
        worst_iou = min(worst_iou, iou(face.box * scale, boxes[k]))
        worst_px = max(worst_px, float(np.abs(face.landmarks - points[k] / scale).max()))
    same = len(ours) == len(boxes) and worst_iou >= 0.95 and worst_px <= 1.0
    return same, worst_iou, worst_px


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", type=float, nargs="*", default=[0.1, 0.15, 0.2])
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (a quick look)")
    args = parser.parse_args(argv)
    settings = load_settings()
    root = DATA / "celeba_dev"
    images = load_celeba(root).images[:args.limit or None]
    reference = reference_detector(settings)
    kw = {"max_side": settings.detection.max_side, "min_face_size": settings.detection.min_face,
          "thresholds": settings.detection.thresholds, "threads": 1}
    ours = FaceDetector(settings.models_dir, **kw).prepare()
    probes = {r: FaceDetector(settings.models_dir, probe_face_ratio=r, **kw).prepare() for r in args.ratios}
    spent = {"reference": 0.0, "onnx": 0.0, **{f"probe_{r}": 0.0 for r in args.ratios}}
    agree, misses_ref, misses_ours, worst_iou, worst_px, differing = 0, 0, 0, 1.0, 0.0, []
    probe_same = {r: 0 for r in args.ratios}
    probe_differing: dict[float, list] = {r: [] for r in args.ratios}
    for n, rel in enumerate(images):
        rgb = decode_image((root / rel).read_bytes(), **LIMITS)
        h, w = rgb.shape[:2]
        scale = min(1.0, settings.detection.max_side / max(h, w))
        t = time.perf_counter()
        small = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                    interpolation=cv2.INTER_AREA)
        boxes, points = reference(small)
        spent["reference"] += time.perf_counter() - t
        t = time.perf_counter()
        found = ours.detect(rgb)
        spent["onnx"] += time.perf_counter() - t
        same, w_iou, w_px = compare(found, boxes, points, scale)
        agree += same
        if not same:
            differing.append({"image": rel, "reference_faces": len(boxes), "onnx_faces": len(found),
                              "worst_iou": round(w_iou, 4), "worst_landmark_px": round(w_px, 3)})
        worst_iou, worst_px = min(worst_iou, w_iou), max(worst_px, w_px)
        misses_ref += not len(boxes)
        misses_ours += not found
        for r, probe in probes.items():
            t = time.perf_counter()
            main_faces = probe.detect(rgb, main_face=True)
            spent[f"probe_{r}"] += time.perf_counter() - t
            both = found and main_faces
            overlap = iou(found[0].box, main_faces[0].box) if both else float(not found and not main_faces)
            probe_same[r] += overlap >= 0.95
            if overlap < 0.95:
                probe_differing[r].append({"image": rel, "iou_with_full_search_face": round(overlap, 3),
                                           "full_faces": len(found), "probe_faces": len(main_faces)})
        if n % 100 == 99:
            print(f"  {n + 1}/{len(images)}: {agree} agree", flush=True)
    count = len(images)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other work)",
        "photos": count, "detect_max_side": settings.detection.max_side, "min_face": settings.detection.min_face,
        "agree": agree, "agree_rule": "same face count; IoU >= 0.95; landmarks <= 1 px",
        "worst_iou": round(worst_iou, 5), "worst_landmark_px": round(worst_px, 4), "differing": differing,
        "no_face_reference": misses_ref, "no_face_onnx": misses_ours,
        "ms_per_photo_one_thread": {k: round(1000 * v / count, 1) for k, v in spent.items()},
        "probe_same_main_face": {str(r): probe_same[r] for r in args.ratios},
        "probe_same_face_other_box": {str(r): sum(d["iou_with_full_search_face"] >= 0.5 for d in probe_differing[r])
                                      for r in args.ratios},
        "probe_differing": {str(r): probe_differing[r] for r in args.ratios},
    }
    if not args.limit:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "detector_agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
