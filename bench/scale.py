"""What the store costs and finds as the gallery grows, on realistic vectors, through the service's own store
(records in SQLite, the index embedded or a `chroma run` server).

Realistic: random unit vectors are nearly orthogonal to each other, so an index search among them is easy and
says nothing. Here the synthetic people are drawn from a Gaussian fitted to the default model's real
templates of LFW (mean and full covariance of the 5,749 people's templates), renormalised; the real people of
LFW with two or more photos are enrolled among them from one photo and searched with another (real genuine
pairs, real probes). Their impostor scores against the synthetic people are printed beside real impostor
scores (mean, std, the 1e-3 and 1e-5 tails), so the generator's realism can be judged.

For each gallery size and mode: how fast the store fills (records written in bulk, then the index generation
built by ``RecordsStore.rebuild``, the code path of ``enroll rebuild-index``), identify's store work (gallery
count + search + re-scoring) p50/p99, the share of real probes whose top candidate is the exact nearest
person found by numpy over the whole gallery (``recall_at_1``), start-to-ready (opening the store, then reading
the index into memory as a serving process does at its start; with ``--cold`` from disk, the page cache dropped
first as after a reboot) and the first search after it, an erasure's cost and how long until it is final on
disk (``compact``), RSS and disk per person.

    .venv/bin/python -m bench.scale --galleries 10000 100000 --modes embedded server

With ``--keep DIR`` each build stays in DIR/<mode>-<gallery> (records in data/, the index in data/chroma for
either mode), for ``bench.cold_start``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, update

from service.compose import open_store
from service.config import Settings, load_settings, replace
from service.core.records import now_iso
from service.core.vectors import fuse
from service.store.schema import faces, galleries, persons
from service.vision.detector import FaceDetector
from service.vision.embedders.registry import create_embedder

from .datasets import DATA, PairSet, load_lfw
from .latency import RESULTS
from .lfw import combine, detect_all, embed_all
from .servers import start_chroma

MODEL = load_settings().recognition.model  # the default: its centre (bench.centre) applies


def lfw_embeddings() -> tuple[np.ndarray, PairSet, np.ndarray]:
    """The default model's embeddings of every LFW image (cached by bench.lfw; NaN rows where no face was
    found), the pair set, and which rows have a face."""
    settings = load_settings()
    ps = load_lfw(DATA / "lfw")
    detection = settings.detection
    detector = FaceDetector(settings.models_dir, max_side=detection.max_side, min_face_size=detection.min_face,
                            thresholds=detection.thresholds).prepare()
    found, _ = detect_all(ps, DATA / "lfw", detector, True)
    parts, weights = [], []
    for part in settings.recognition.model.split("+"):
        model_id, _, weight = part.partition(":")
        embedder = create_embedder(replace(settings, flip_tta=False), model_id).prepare()
        plain, mirrored = embed_all(ps, DATA / "lfw", found, embedder)
        parts.append(combine(plain, mirrored, settings.recognition.flip_tta))
        weights.append(float(weight or 1))
    emb = fuse([np.nan_to_num(p) for p in parts], weights)
    return emb, ps, np.array([f is not None for f in found])


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def real_people(emb: np.ndarray, who: list[str]) -> dict[str, np.ndarray]:
    people: dict[str, list[int]] = {}
    for i, name in enumerate(who):
        people.setdefault(name, []).append(i)
    return {name: emb[rows] for name, rows in people.items()}


def tails(scores: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(scores.mean()), 4), "std": round(float(scores.std()), 4),
            "q1e-3": round(float(np.quantile(scores, 1 - 1e-3)), 4),
            "q1e-5": round(float(np.quantile(scores, 1 - 1e-5)), 4) if len(scores) >= 1e5 else None}


def realistic(size: int, n_probes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size`` synthetic people drawn from the Gaussian fitted to LFW's real templates, and ``n_probes`` real
    people of LFW: each one's first photo (enrolled) and second (the probe). Seeded: every benchmark that
    calls it (``bench.hnsw_sweep`` too) sees the same vectors."""
    emb, ps, found = lfw_embeddings()
    people = real_people(emb[found], [name.split("/")[0] for name, ok in zip(ps.images, found) if ok])
    templates = np.stack([unit(v.mean(axis=0)) for v in people.values()])
    mean, cov = templates.mean(axis=0), np.cov(templates, rowvar=False)
    rng = np.random.default_rng(0)
    multi = [v for v in people.values() if len(v) >= 2]
    rng.shuffle(multi)  # type: ignore[arg-type]
    multi = multi[:n_probes]
    enrolled, probes = np.stack([v[0] for v in multi]), np.stack([v[1] for v in multi])
    synthetic = unit(rng.multivariate_normal(mean, cov, size=size, method="cholesky").astype(np.float32))
    return synthetic, enrolled, probes


def exact_nearest(probes: np.ndarray, gallery: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Row of ``gallery`` nearest each probe by numpy over everyone: the truth an index is held to (in chunks:
    1,000 probes x 1M people is 4 GB)."""
    best = np.full(len(probes), -2.0, np.float32)
    exact = np.zeros(len(probes), np.int64)
    for start in range(0, len(gallery), chunk):
        scores = probes @ gallery[start:start + chunk].T
        top = scores.argmax(axis=1)
        better = scores[np.arange(len(probes)), top] > best
        best[better], exact[better] = scores[np.arange(len(probes)), top][better], top[better] + start
    return exact


def fill_records(store, ids: list[str], vectors: np.ndarray) -> float:
    """Persons with one face each written in bulk (a million single registrations would take hours); the
    maintained count set to match; the seconds it took."""
    started = time.monotonic()
    stamp = now_iso()
    crop = b"\xff\xd8" + os.urandom(13_000)  # the size of a real stored crop
    with store.engine.begin() as db:
        for start in range(0, len(ids), 5000):
            chunk = range(start, min(start + 5000, len(ids)))
            blobs = [np.asarray(vectors[i], "<f4").tobytes() for i in chunk]
            db.execute(insert(persons), [{"model_id": MODEL, "id": ids[i], "name": ids[i], "name_key": ids[i],
                                          "metadata": "{}", "created_at": stamp, "updated_at": stamp,
                                          "template": b} for i, b in zip(chunk, blobs)])
            db.execute(insert(faces), [{"id": f"f{ids[i]}", "model_id": MODEL, "person_id": ids[i],
                                        "created_at": stamp, "box": "{}", "quality": "{}", "embedding": b,
                                        "crop": crop} for i, b in zip(chunk, blobs)])
        db.execute(update(galleries).where(galleries.c.model_id == MODEL).values(persons=len(ids)))
    return time.monotonic() - started


def percentiles(samples: list[float]) -> tuple[float, float]:
    return round(float(np.percentile(samples, 50)), 2), round(float(np.percentile(samples, 99)), 2)


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def searches(store, probes: np.ndarray, nearest: list[str]) -> dict:
    """Identify's store work for each probe (gallery count + search + re-scoring), timed, and the share whose
    top candidate is ``nearest`` (the exact nearest person)."""
    found, times = 0, []
    for probe, want in zip(probes, nearest, strict=True):
        started = time.perf_counter()
        store.person_count()
        hits = store.nearest_persons(probe, 5)
        times.append(1000 * (time.perf_counter() - started))
        found += bool(hits) and hits[0].person_id == want
    p50, p99 = percentiles(times)
    return {"recall_at_1": round(found / len(probes), 4), "p50_ms": p50, "p99_ms": p99}


def close_store(store: Any) -> None:
    """The store and its Chroma client: embedded, the next client then loads the index again (``store.close()``
    keeps Chroma's cache, as a process that goes on would want)."""
    store.index.client.close()
    store.close()


def timed_start(settings: Settings, dim: int, first_probe: np.ndarray) -> tuple[Any, dict]:
    """A serving process's start on the store, timed: the open (records database, index generation, outbox
    replay), then the index read into memory (``compose.load_index``; Chroma would otherwise read it at the first
    search, under a search's own deadline), then one search. The store is left open for the caller."""
    started = time.monotonic()
    store = open_store(settings, MODEL, dim)
    row: dict = {"open_s": round(time.monotonic() - started, 2)}
    try:
        loaded = store.load_index(settings.store.index_load_timeout_s)
        row["index_load_s"] = None if loaded is None else round(loaded, 2)
        row["start_to_ready_s"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        store.nearest_persons(first_probe, 5)
        row["first_search_s"] = round(time.monotonic() - started, 2)
    except BaseException:
        close_store(store)
        raise
    return store, row


def run(mode: str, size: int, synthetic: np.ndarray, enrolled: np.ndarray, probes: np.ndarray,
        chroma_url: str, tmp: Path, overrides: dict, search_efs: Sequence[int] = (),
        restart: Callable[..., str] | None = None, cold: bool = False) -> dict:
    n_real = len(enrolled)
    gallery = np.concatenate([enrolled, synthetic[:size - n_real]])
    ids = [f"real{i}" for i in range(n_real)] + [f"syn{i}" for i in range(size - n_real)]
    settings = load_settings(data_dir=str(tmp), chroma_url=chroma_url if mode == "server" else "", **overrides)
    store = open_store(settings, MODEL, gallery.shape[1])
    hnsw = [settings.store.index_hnsw_m, settings.store.index_hnsw_construction_ef, settings.store.index_hnsw_search_ef]
    row: dict = {"mode": mode, "gallery": size, "hnsw": hnsw,
                 "centred": store.index.centre is not None}
    records_s = fill_records(store, ids, gallery)
    started = time.monotonic()

    def progress(done: dict) -> None:  # the build rate as it goes (a 1M build takes a while)
        if done["indexed"] % 100_000 == 0:
            print(f"  {mode} {size}: indexed {done['indexed']} in {time.monotonic() - started:.0f} s", flush=True)
    built = store.rebuild(progress)
    row["fill_per_s"] = round(size / (records_s + built["seconds"]), 1)
    row["index_build_s"] = built["seconds"]
    exact = exact_nearest(probes, gallery)
    row.update(searches(store, probes, [ids[i] for i in exact]))
    row["correct_person_exact"] = round(float(np.mean(exact == np.arange(len(probes)))), 4)
    close_store(store)
    if search_efs:
        # Other search ef on the same build: the store gives an existing generation the configured search ef
        # when it opens it, and Chroma applies it when it next loads the index (a new embedded client, or a
        # server's restart), so each is measured from a fresh open.
        row["search_ef_sweep"] = []
        for ef in search_efs:
            if restart is not None:
                settings = replace(settings, chroma_url=restart())
            store, timed = timed_start(replace(settings, index_hnsw_search_ef=ef), gallery.shape[1], probes[0])
            swept = {"search_ef": ef, **timed, **searches(store, probes, [ids[i] for i in exact])}
            row["search_ef_sweep"].append(swept)
            print(f"  {mode} {size}: {json.dumps(swept)}", flush=True)
            close_store(store)
    if cold:  # what a reboot leaves: none of the store's files in memory (a server is restarted on them too)
        row["cold_start"] = drop_page_cache()
        if restart is not None:
            settings = replace(settings, chroma_url=restart(drop_page_cache))
    store, timed = timed_start(settings, gallery.shape[1], probes[0])
    timed["first_search_after_start_s"] = timed.pop("first_search_s")
    row.update(timed)
    started = time.monotonic()
    store.delete_person("syn7" if size > n_real else "real0")
    row["erasure_ms"] = round(1000 * (time.monotonic() - started), 1)
    compact = store.compact()
    row["erasure_final_after_compact_s"] = compact["seconds"]
    row["rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    store.close()
    row["disk_bytes_per_person"] = round(disk_bytes(tmp) / size) if mode == "embedded" else None
    return row


def drop_page_cache() -> bool:
    """Empties the kernel's page cache, as a reboot would, so the next open reads the store from disk: True
    if done (root only; otherwise the start measured is a warm one, and the row says so)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


class Server:
    """A `chroma run` server on ``path`` that can be restarted on its files (it then reads them again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url, self.proc = start_chroma(path)

    def restart(self, meanwhile: Callable[[], object] | None = None) -> str:
        self.proc.terminate()
        self.proc.wait()
        if meanwhile is not None:
            meanwhile()
        self.url, self.proc = start_chroma(self.path)
        return self.url


@contextlib.contextmanager
def _kept(root: Path, mode: str, size: int) -> Iterator[str]:
    """A build directory that outlives the run (a 1M build takes hours; bench.cold_start reopens it)."""
    path = root / f"{mode}-{size}"
    path.mkdir(parents=True, exist_ok=False)
    yield str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galleries", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--modes", nargs="+", default=["embedded", "server"])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--hnsw", type=int, nargs=3, metavar=("M", "CONSTRUCTION_EF", "SEARCH_EF"),
                        help="HNSW settings to measure instead of the configured ones")
    parser.add_argument("--search-ef", type=int, nargs="+", default=[],
                        help="also measure these search ef on the same build (each set, then the index reopened)")
    parser.add_argument("--no-centre", action="store_true", help="index uncentred (no bench.centre vector)")
    parser.add_argument("--cold", action="store_true",
                        help="measure start-to-ready and the first search with the page cache dropped (root)")
    parser.add_argument("--keep", type=Path, help="build in DIR/<mode>-<gallery> and keep it (for bench.cold_start)")
    parser.add_argument("--out", default="scale.json", help="results file name in bench/results")
    args = parser.parse_args(argv)
    overrides: dict = {}
    if args.hnsw:
        overrides.update(index_hnsw_m=args.hnsw[0], index_hnsw_construction_ef=args.hnsw[1],
                         index_hnsw_search_ef=args.hnsw[2])
    if args.no_centre:
        overrides["index_centres_file"] = "/nonexistent"
    synthetic, enrolled, probes = realistic(max(args.galleries), args.probes)
    real_impostor = np.concatenate([probes[i] @ np.delete(enrolled, i, axis=0).T for i in range(len(probes))])
    synthetic_impostor = (probes @ synthetic[:20_000].T).ravel()
    realism = {"real_impostor": tails(real_impostor), "synthetic_impostor": tails(synthetic_impostor),
               "real_genuine": tails(np.einsum("ij,ij->i", probes, enrolled))}
    print(json.dumps(realism, indent=1), flush=True)
    rows = []
    for mode in args.modes:
        for size in args.galleries:
            with (_kept(args.keep, mode, size) if args.keep else tempfile.TemporaryDirectory()) as tmp:
                # a server's files where an embedded store keeps its own (data/chroma): bench.cold_start reopens
                # a kept directory either way
                server = Server(Path(tmp) / "data" / "chroma") if mode == "server" else None
                try:
                    rows.append(run(mode, size, synthetic, enrolled, probes, server.url if server else "",
                                    Path(tmp) / "data", overrides, args.search_ef,
                                    server.restart if server else None, args.cold))
                finally:
                    if server is not None:
                        server.proc.kill()
                print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps({"realism": realism, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
