"""Which HNSW settings find the exact nearest person at 1M, measured on plain hnswlib (Chroma's own fork,
``chroma-hnswlib``) instead of through Chroma: a 1M build through the store takes about an hour on this
machine, a bare hnswlib build a fraction of it, and one build serves every search ef.

The vectors are exactly ``bench.scale``'s (same generator, seed and real probes), centred like the index
(``bench.centre``'s vector for the default model); a search asks for ``CENTRED_CANDIDATES`` and the candidates
are re-scored on the raw vectors, as ``RecordsStore`` does. ``recall_at_1`` is held to the same truth as
``bench.scale`` (numpy over the whole raw gallery); ``ceiling`` is what an exact centred search would give
(the raw nearest is not always among the centred top candidates), so what the index itself loses is the gap
between the two. Search times are single-threaded per query, like the service's.

hnswlib is not a dependency of the service: install it beside the project, not into it, e.g.
``pip install --target /tmp/hnswpkg chroma-hnswlib==0.7.6`` and run with ``PYTHONPATH=/tmp/hnswpkg``:

    PYTHONPATH=/tmp/hnswpkg .venv/bin/python -m bench.hnsw_sweep --gallery 1000000 --builds 32,200 --ef 200 400 800
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from service.compose import index_centre
from service.config import load_settings
from service.store.chroma_index import CENTRED_CANDIDATES

from .latency import RESULTS
from .scale import MODEL, exact_nearest, percentiles, realistic


def centred_ceiling(probes: np.ndarray, gallery: np.ndarray, centred_probes: np.ndarray,
                    centred: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Share of probes whose raw nearest is among the exact centred top ``k`` (what a perfect index gives)."""
    best = np.full((len(probes), k), -2.0, np.float32)
    rows = np.zeros((len(probes), k), np.int64)
    for start in range(0, len(centred), 100_000):
        scores = centred_probes @ centred[start:start + 100_000].T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        both = np.concatenate([best, np.take_along_axis(scores, top, axis=1)], axis=1)
        ids = np.concatenate([rows, top + start], axis=1)
        keep = np.argpartition(-both, k, axis=1)[:, :k]
        best, rows = np.take_along_axis(both, keep, axis=1), np.take_along_axis(ids, keep, axis=1)
    raw = np.einsum("ij,ikj->ik", probes, gallery[rows])
    return float(np.mean(rows[np.arange(len(probes)), raw.argmax(axis=1)] == exact))


def main(argv: list[str] | None = None) -> None:
    import hnswlib  # type: ignore  # not a dependency of the service (see the docstring)

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--builds", nargs="+", default=["32,200"], help="M,construction_ef per build")
    parser.add_argument("--ef", type=int, nargs="+", default=[200, 400, 800], help="search ef values")
    parser.add_argument("--threads", type=int, default=2, help="threads for the build")
    parser.add_argument("--out", default="hnsw_sweep.json", help="results file name in bench/results")
    args = parser.parse_args(argv)
    synthetic, enrolled, probes = realistic(args.gallery, args.probes)
    gallery = np.concatenate([enrolled, synthetic[:args.gallery - len(enrolled)]])
    del synthetic
    centre = index_centre(load_settings().store.index_centres_file, MODEL)
    assert centre is not None, "the default model has no centre (bench.centre)"
    centred, centred_probes = centre.apply(gallery), centre.apply(probes)
    exact = exact_nearest(probes, gallery)
    exact_centred = exact_nearest(centred_probes, centred)
    ceiling = centred_ceiling(probes, gallery, centred_probes, centred, exact, CENTRED_CANDIDATES)
    out: dict = {"library": f"chroma-hnswlib (not Chroma), {args.threads} build threads, shared 2-core machine",
                 "gallery": args.gallery, "probes": len(probes), "candidates": CENTRED_CANDIDATES,
                 "ceiling": round(ceiling, 4), "rows": []}
    print(json.dumps(out), flush=True)
    for build in args.builds:
        m, cef = (int(x) for x in build.split(","))
        index = hnswlib.Index(space="cosine", dim=gallery.shape[1])
        index.init_index(max_elements=len(gallery), M=m, ef_construction=cef)
        index.set_num_threads(args.threads)
        started = time.monotonic()
        for start in range(0, len(centred), 100_000):
            end = min(start + 100_000, len(centred))
            index.add_items(centred[start:end], np.arange(start, end))
            print(f"  M {m} cef {cef}: {end} in {time.monotonic() - started:.0f} s", flush=True)
        build_s = round(time.monotonic() - started, 1)
        index.set_num_threads(1)
        for ef in args.ef:
            index.set_ef(ef)
            found = found_centred = 0
            times = []
            for i, probe in enumerate(centred_probes):
                started = time.perf_counter()
                labels, _ = index.knn_query(probe[None], k=CENTRED_CANDIDATES)
                times.append(1000 * (time.perf_counter() - started))
                cands = labels[0].astype(np.int64)
                found += cands[int(np.argmax(gallery[cands] @ probes[i]))] == exact[i]
                found_centred += cands[0] == exact_centred[i]
            p50, p99 = percentiles(times)
            row = {"M": m, "construction_ef": cef, "search_ef": ef, "build_s": build_s,
                   "recall_at_1": round(found / len(probes), 4),
                   "centred_recall_at_1": round(found_centred / len(probes), 4), "search_p50_ms": p50,
                   "search_p99_ms": p99}
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)  # after each row: a later build may not finish
            (RESULTS / args.out).write_text(json.dumps(out, indent=2) + "\n")
        del index


if __name__ == "__main__":
    main()
