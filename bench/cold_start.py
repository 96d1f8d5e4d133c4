"""A start after a reboot, on a store that is already big: what the service's store open and its first
searches cost when none of the store's files are in memory. ``bench.scale`` builds its galleries in a temporary
directory and measures the start on warm files; this reopens a kept one (``bench.scale --keep DIR``) with the
kernel's page cache dropped before each start (root only), embedded and behind a `chroma run` server on the same
files, and writes ``bench/results/cold_start.json``.

Start-to-ready is the store's part of a serving process's start: the open (records database, index generation,
outbox replay), then reading the index into memory (``index_load_s``; Chroma would otherwise read it at the first
search). That read is where a big gallery's cold start goes. The models' load is the same at any gallery size
(``bench.latency``).

After the first search, the rest of the real probes measure identify's store work on the loaded index (once while
the records' pages still come from disk, then again warm) and its ``recall_at_1``: the share whose top candidate is
the nearest person by exact numpy search over the templates the records hold (read from the kept store itself, so an
erasure made since the build is accounted for). With ``--search-ef`` each start opens the store with that search ef
instead of the configured one (Chroma applies it when it loads the index): one build, measured in both modes at
several search ef.

    .venv/bin/python -m bench.cold_start var/scale-1m --search-ef 400 800
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from service.compose import open_store
from service.config import load_settings
from service.store.rows import vector
from service.store.schema import persons

from .latency import RESULTS
from .scale import MODEL, close_store, drop_page_cache, exact_nearest, realistic, searches, timed_start
from .servers import start_chroma


def exact_truth(data_dir: Path, probes: np.ndarray) -> list[str]:
    """For each probe, the person whose stored template is nearest, by numpy over everyone the records hold."""
    store = open_store(load_settings(data_dir=str(data_dir), chroma_url=""), MODEL, probes.shape[1])
    try:
        with store.engine.connect() as db:
            found = db.execute(select(persons.c.id, persons.c.template).where(persons.c.model_id == MODEL)).all()
    finally:
        close_store(store)
    ids = [r.id for r in found]
    templates = np.stack([vector(r.template) for r in found])
    return [ids[i] for i in exact_nearest(probes, templates)]


def cold_start(data_dir: Path, chroma_url: str, probes: np.ndarray, nearest: list[str],
               search_ef: int | None, *, drop: bool) -> dict:
    """One start on ``data_dir`` (its ``chroma`` folder, or the server at ``chroma_url``), with the page cache
    dropped just before if ``drop``: the open, the first search, then searches on the now-loaded index."""
    row: dict = {"cold": drop_page_cache() if drop else None}
    overrides = {} if search_ef is None else {"index_hnsw_search_ef": search_ef}
    settings = load_settings(data_dir=str(data_dir), chroma_url=chroma_url, **overrides)
    row["search_ef"] = settings.store.index_hnsw_search_ef
    store, timed = timed_start(settings, probes.shape[1], probes[0])
    row.update(timed)
    try:
        row.update(searches(store, probes[1:], nearest[1:]))
        # the same searches again, with the records' pages and the index now in memory: the steady state
        row["warm"] = searches(store, probes[1:], nearest[1:])
        row["gallery"] = store.person_count()
    finally:
        close_store(store)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, help="a kept bench.scale directory: data/ (records, data/chroma)")
    parser.add_argument("--modes", nargs="+", default=["embedded", "server"])
    parser.add_argument("--starts", type=int, default=2, help="cold starts per mode")
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--search-ef", type=int, nargs="+", default=[None],
                        help="open with these search ef instead of the configured one (each for --starts starts)")
    parser.add_argument("--out", default="cold_start.json", help="results file name in bench/results")
    args = parser.parse_args(argv)
    data = args.store / "data"
    if not (data / "chroma").is_dir():
        parser.error(f"{data / 'chroma'} is not there: keep a store with bench.scale --keep")
    _, _, probes = realistic(0, args.probes)
    nearest = exact_truth(data, probes)
    rows = []
    for mode, search_ef, start in itertools.product(args.modes, args.search_ef, range(args.starts)):
        if mode == "server":  # the server is started on cold files too, then the service's store opens
            dropped = drop_page_cache()
            began = time.monotonic()
            url, proc = start_chroma(data / "chroma")
            server_s = round(time.monotonic() - began, 2)
            try:  # not dropped again: that would evict what the server's start has just read
                row = cold_start(data, url, probes, nearest, search_ef, drop=False)
            finally:
                proc.terminate()
                proc.wait()
            row.update(cold=dropped, server_start_s=server_s)
        else:
            row = cold_start(data, "", probes, nearest, search_ef, drop=True)
        rows.append({"mode": mode, "start": start + 1, **row})
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps({"store": str(args.store), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
