"""Where one verify's time goes, in process: the probe pipeline's parts on the photos bench/latency.py sends.

    .venv/bin/python -m bench.breakdown [--rounds 6]

For each photo of ``../shared/data/photos``: decode, MTCNN's probe search (verify's), and for each part of the
default model its alignment and its embedding (the face and its mirror). Medians over the photos and rounds
(the first round is a warm-up), on both cores of this machine; no HTTP. Writes bench/results/breakdown.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from service.compose import build_pipeline
from service.config import load_settings

from .latency import DATA, RESULTS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    settings = load_settings()
    pipeline = build_pipeline(settings).prepare()
    parts = getattr(pipeline.embedder, "parts", [(pipeline.embedder, 1.0)])
    photos = [p.read_bytes() for p in sorted(DATA.glob("*/*.jpg"))]
    ms: dict[str, list[float]] = {"decode": [], "detect (probe search)": [], "total": []}
    for part, _ in parts:
        ms[f"{part.model_id}: align"], ms[f"{part.model_id}: embed (face + mirror)"] = [], []
    for round_ in range(args.rounds + 1):
        for data in photos:
            t0 = time.perf_counter()
            rgb = pipeline.decode(data)
            t1 = time.perf_counter()
            face = pipeline.detector.detect(rgb, main_face=True)[0]
            t2 = time.perf_counter()
            spent = {"decode": t1 - t0, "detect (probe search)": t2 - t1}
            for part, _ in parts:
                a = time.perf_counter()
                crop = part.align(rgb, face)
                b = time.perf_counter()
                part.embed([crop])
                spent[f"{part.model_id}: align"] = b - a
                spent[f"{part.model_id}: embed (face + mirror)"] = time.perf_counter() - b
            spent["total"] = time.perf_counter() - t0
            if round_:  # the first round warms up
                for key, seconds in spent.items():
                    ms[key].append(1000 * seconds)
    result = {"model": pipeline.embedder.model_id, "photos": len(photos), "rounds": args.rounds,
              "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
              "median_ms": {key: round(float(np.median(v)), 2) for key, v in ms.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "breakdown.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
