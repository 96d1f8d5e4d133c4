"""False ``duplicate_face`` as the gallery grows: enroll distinct LFW people one by one through the API.

    make bench-duplicates                  # or: .venv/bin/python -m bench.duplicates [--people 1000]

Every LFW identity is a different person, so every 409 ``duplicate_face`` is a false one: an honest newcomer
refused. Each person is registered from one photo (their first in ``pairs.txt`` order) over loopback HTTP
against the real gunicorn server and embedded store, in a fixed random order. Photos refused for their own
sake (quality gate, no face) are counted apart and are not in the rate's denominator. Writes
``bench/results/duplicates.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from .datasets import DATA, load_lfw
from .latency import KEY, RESULTS, start_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    lfw = load_lfw(DATA / "lfw")
    first: dict[str, str] = {}
    for rel in lfw.images:
        first.setdefault(rel.split("/")[0], rel)
    names = sorted(first)
    order = np.random.default_rng(args.seed).permutation(len(names))[:args.people]
    headers = {"X-API-Key": KEY}
    counts = {"registered": 0, "duplicate_face": 0, "refused_photo": 0}
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        session = requests.Session()
        started = time.monotonic()
        try:
            for n, i in enumerate(order, 1):
                name = names[i]
                with open(DATA / "lfw" / first[name], "rb") as f:
                    r = session.post(f"{base}/v1/persons", headers=headers, files={"image": f},
                                     data={"name": name.replace("_", " "), "person_id": name}, timeout=60)
                code = "registered" if r.status_code == 201 else r.json()["error"]["code"]
                if code in ("registered", "duplicate_face"):
                    counts[code] += 1
                elif code in ("low_quality", "no_face", "multiple_faces"):
                    counts["refused_photo"] += 1
                else:
                    raise SystemExit(f"unexpected answer for {name}: {r.status_code} {r.text[:300]}")
                if n % 100 == 0:
                    tried = counts["registered"] + counts["duplicate_face"]
                    curve.append({"attempts": n, "gallery_people": counts["registered"],
                                  "false_duplicates": counts["duplicate_face"],
                                  "false_duplicate_rate": round(counts["duplicate_face"] / max(tried, 1), 4)})
                    print(curve[-1], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    tried = counts["registered"] + counts["duplicate_face"]
    result = {"people_tried": int(len(order)), **counts,
              "false_duplicate_rate": round(counts["duplicate_face"] / max(tried, 1), 4), "curve": curve,
              "seconds": round(time.monotonic() - started, 1), "machine": platform.machine(),
              "cpus": os.cpu_count()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "duplicates.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}))


if __name__ == "__main__":
    main()
