"""What the store costs as the gallery grows: synthetic persons (random unit vectors, one face each, a 4 kB
crop) written through the records store on SQLite + embedded Chroma, then timed: the per-request work of
identify (gallery count, index search with the records filter), a registration, the reconcile at start, and
a compaction. Writes ``bench/results/scale.json``.

    .venv/bin/python -m bench.scale [--people 50000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from service.compose import open_store
from service.config import load_settings
from service.core.records import NewFace

from .latency import RESULTS

DIM = 256  # the default fusion's dimension (dlib 128 + SFace 128)


def timed(fn, repeat: int = 20) -> float:
    """Median milliseconds of ``fn``."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - started))
    return round(float(np.median(out)), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=50_000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp)
        store = open_store(settings, "scale-model", DIM)
        vectors = rng.normal(size=(args.people, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.monotonic()
        for i, v in enumerate(vectors):
            store.create_person(person_id=f"p{i}", name=f"Person {i}", metadata={}, template=v,
                                faces=[NewFace(v, {}, {}, crop_jpeg=rng.bytes(4096))])
        fill_s = time.monotonic() - started
        probe = vectors[123] + 0.05 * rng.normal(size=DIM).astype(np.float32)
        result = {
            "people": args.people,
            "fill_s": round(fill_s, 1),
            "registration_ms": round(1000 * fill_s / args.people, 2),
            "gallery_count_ms": timed(store.person_count),
            "search_top5_ms": timed(lambda: store.nearest_persons(probe, 5)),
            "list_page_ms": timed(lambda: store.list_persons(limit=20, after=("2026", "p"))),
            "records_mib": round(Path(tmp, "records.sqlite3").stat().st_size / 2**20, 1),
        }
        store.close()
        started = time.monotonic()
        store = open_store(settings, "scale-model", DIM)  # reconcile at start
        result["open_with_reconcile_s"] = round(time.monotonic() - started, 2)
        store.delete_person("p7")
        with store.registration_lock():
            started = time.monotonic()
            store.compact()
            result["compaction_s"] = round(time.monotonic() - started, 1)
        assert store.nearest_persons(vectors[123], 1)[0].person_id == "p123"
        store.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
