"""A start after a reboot, on a store that is already big: what the service's store open and its first
searches cost when none of the store's files are in memory. ``bench.scale`` builds its galleries in a temporary
directory and measures the start on warm files; this reopens a kept one (``bench.scale --keep DIR``) with the
kernel's page cache dropped before each start (root only), embedded and behind a `chroma run` server on the same
files, and writes ``bench/results/cold_start.json``.

Start-to-ready is the store's part of a start (records database, index generation, outbox replay); the models'
load is the same at any gallery size (``bench.latency``). Chroma opens an index lazily, so the first search reads
its files: that is where a big gallery's cold start goes.

    .venv/bin/python -m bench.cold_start var/scale-1m --gallery 1000000
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from service.compose import open_store
from service.config import load_settings

from .latency import RESULTS
from .scale import MODEL, drop_page_cache, percentiles, realistic
from .servers import start_chroma


def cold_start(data_dir: Path, chroma_url: str, probes: np.ndarray) -> dict:
    """One start on ``data_dir`` (its ``chroma`` folder, or the server at ``chroma_url``) with the page cache
    dropped just before: the open, the first search, then searches on the now-loaded index."""
    row: dict = {"cold": drop_page_cache()}
    settings = load_settings(data_dir=str(data_dir), chroma_url=chroma_url)
    started = time.monotonic()
    store = open_store(settings, MODEL, probes.shape[1])
    row["start_to_ready_s"] = round(time.monotonic() - started, 2)
    try:
        started = time.monotonic()
        store.nearest_persons(probes[0], 5)
        row["first_search_s"] = round(time.monotonic() - started, 2)
        times = []
        for probe in probes[1:]:
            started = time.perf_counter()
            store.person_count()
            store.nearest_persons(probe, 5)
            times.append(1000 * (time.perf_counter() - started))
        row["p50_ms"], row["p99_ms"] = percentiles(times)
        row["gallery"] = store.person_count()
    finally:
        store.index.client.close()
        store.close()
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, help="a kept bench.scale directory: data/ (records, data/chroma)")
    parser.add_argument("--modes", nargs="+", default=["embedded", "server"])
    parser.add_argument("--starts", type=int, default=2, help="cold starts per mode")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--out", default="cold_start.json", help="results file name in bench/results")
    args = parser.parse_args(argv)
    data = args.store / "data"
    if not (data / "chroma").is_dir():
        parser.error(f"{data / 'chroma'} is not there: keep a store with bench.scale --keep")
    _, _, probes = realistic(0, args.probes)
    rows = []
    for mode in args.modes:
        for start in range(args.starts):
            if mode == "server":  # the server is started on cold files too, then the service's store opens
                dropped = drop_page_cache()
                began = time.monotonic()
                url, proc = start_chroma(data / "chroma")
                server_s = round(time.monotonic() - began, 2)
                try:
                    row = cold_start(data, url, probes)
                finally:
                    proc.terminate()
                    proc.wait()
                row.update(cold=dropped, server_start_s=server_s)
            else:
                row = cold_start(data, "", probes)
            rows.append({"mode": mode, "start": start + 1, **row})
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps({"store": str(args.store), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
