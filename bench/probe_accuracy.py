"""Does verify's reduced search (``detect_probe_face_ratio``) change accuracy? celeba_dev's 715 real photos,
each embedded with the configured model from the full search's largest face and from the probe search's, then
scored on the same pairs and impostors as bench/lfw.py (10-fold accuracy, TAR at FAR 1e-3).

    .venv/bin/python -m bench.probe_accuracy

Only photos whose two faces differ are embedded twice. Writes bench/results/probe_accuracy.json.
"""
from __future__ import annotations

import json
import os
import platform

import numpy as np

from service.compose import build_pipeline
from service.config import load_settings
from service.core.images import decode_image

from .datasets import DATA, load_celeba
from .lfw import LIMITS, RESULTS, evaluate


def main() -> None:
    settings = load_settings()
    pipeline = build_pipeline(settings).prepare()
    root = DATA / "celeba_dev"
    ps = load_celeba(root)
    full = np.full((len(ps.images), pipeline.embedder.dim), np.nan, np.float32)
    probe = full.copy()
    moved = 0
    for i, rel in enumerate(ps.images):
        rgb = decode_image((root / rel).read_bytes(), **LIMITS)
        a = pipeline.detector.detect(rgb)[:1]
        b = pipeline.detector.detect(rgb, main_face=True)[:1]
        if a:
            full[i] = pipeline.embedder.get(rgb, a)[0]
        if a and b and np.allclose(a[0].box, b[0].box):
            probe[i] = full[i]
        elif b:
            moved += 1
            probe[i] = pipeline.embedder.get(rgb, b)[0]
    out = {"model": pipeline.embedder.model_id, "detect_probe_face_ratio": settings.detection.probe_face_ratio,
           "photos": len(ps.images), "photos_with_another_box": moved,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    for name, emb in (("full_search", full), ("probe_search", probe)):
        r = evaluate(ps, emb)
        out[name] = {"accuracy_mean": r["accuracy_mean"], "tar_at_far_1e-3": r["tar_at_far_1e-3"],
                     "threshold_at_far_1e-3": r["threshold_at_far_1e-3"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "probe_accuracy.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
