"""A mixed load over loopback HTTP against the real server: register, verify, identify and delete from
several clients at once, for a bounded time. Counts errors and checks that no acknowledged write was lost.

    make bench-load                        # or: .venv/bin/python -m bench.load [--clients 4 --seconds 120]

Each client owns a disjoint set of LFW people (one photo to register, another to verify with); it loops:
register someone, verify them, identify with another photo of them, and now and then delete one it
registered. Every answer must be the expected one (201/200 with the right person, or a documented refusal
of the photo: low_quality, no_face); anything else is an error. At the end, the list of persons must equal
exactly the acknowledged registrations minus the acknowledged deletions. The RSS of the server's worker
process is sampled once a second: reported at the start (models loaded, nothing served), at each quarter of
the run, at its peak and at the end, so a worker that keeps growing shows; its CPU time per request is
reported too (comparable when other work shares the machine). Writes ``bench/results/load.json`` (4 clients)
or ``load_<N>clients.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests

from .datasets import DATA
from .latency import KEY, RESULTS, percentiles, start_server, worker_cpu_s

REFUSED_PHOTO = {"low_quality", "no_face", "multiple_faces", "duplicate_face"}


def people_with_two_photos() -> list[tuple[str, Path, Path]]:
    out = []
    for folder in sorted((DATA / "lfw").iterdir()):
        photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        if len(photos) >= 2:
            out.append((folder.name, photos[0], photos[1]))
    return out


def rss_of_children(pid: int) -> int:
    """Resident memory (bytes) of the gunicorn workers under ``pid``."""
    total = 0
    for child in Path("/proc").glob("[0-9]*"):
        try:
            stat = (child / "stat").read_text().split()
            if int(stat[3]) == pid:
                total += int((child / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def client(base: str, mine: list[tuple[str, Path, Path]], deadline: float, log: dict, rng: np.random.Generator):
    session = requests.Session()
    headers = {"X-API-Key": KEY}
    registered: list[str] = []

    def call(op: str, method: str, url: str, **kw) -> requests.Response:
        started = time.perf_counter()
        r = session.request(method, url, headers=headers, timeout=120, **kw)
        log["ms"][op].append(1000 * (time.perf_counter() - started))
        return r

    for name, first, second in mine:
        if time.monotonic() > deadline:
            break
        with open(first, "rb") as f:
            r = call("register", "POST", f"{base}/v1/persons", files={"image": f},
                     data={"name": name, "person_id": name})
        if r.status_code != 201:
            code = r.json().get("error", {}).get("code")
            log["refused" if code in REFUSED_PHOTO else "errors"].append((name, r.status_code, code))
            continue
        log["created"].add(name)
        registered.append(name)
        with open(second, "rb") as f:
            r = call("verify", "POST", f"{base}/v1/verify", files={"image": f}, data={"person_id": name})
        if r.status_code != 200 and r.json().get("error", {}).get("code") not in REFUSED_PHOTO:
            log["errors"].append((name, "verify", r.status_code))
        with open(second, "rb") as f:
            r = call("identify", "POST", f"{base}/v1/identify", files={"image": f})
        if r.status_code != 200 and r.json().get("error", {}).get("code") not in REFUSED_PHOTO:
            log["errors"].append((name, "identify", r.status_code))
        if len(registered) > 3 and rng.random() < 0.3:
            gone = registered.pop(int(rng.integers(len(registered))))
            r = call("delete", "DELETE", f"{base}/v1/persons/{gone}")
            if r.status_code == 200:
                log["deleted"].add(gone)
            else:
                log["errors"].append((gone, "delete", r.status_code))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args(argv)
    # Every client shares one key: the per-key limit (1200/minute) would measure itself, not the server.
    env = {"FACEID_RATE_LIMITS": "false", **dict(item.split("=", 1) for item in args.env)}
    people = people_with_two_photos()
    shares = [people[i::args.clients] for i in range(args.clients)]
    log: dict = {"ms": defaultdict(list), "created": set(), "deleted": set(), "errors": [], "refused": []}
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp), env)
        rss_start = rss_of_children(proc.pid)
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(1):
                samples.append(rss_of_children(proc.pid))
        threading.Thread(target=sample, daemon=True).start()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(base, share, deadline, log, np.random.default_rng(i)))
                   for i, share in enumerate(shares)]
        started, cpu = time.monotonic(), worker_cpu_s(proc.pid)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed, cpu = time.monotonic() - started, worker_cpu_s(proc.pid) - cpu
        rss_end = rss_of_children(proc.pid)
        during = list(samples)
        listed, cursor = set(), None
        while True:
            page = requests.get(f"{base}/v1/persons", headers={"X-API-Key": KEY}, timeout=60,
                                params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            listed |= {p["id"] for p in page["items"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
    expected = log["created"] - log["deleted"]
    requests_total = sum(len(v) for v in log["ms"].values())
    result = {"clients": args.clients, "seconds": round(elapsed, 1), "server_env": env, "requests": requests_total,
              "requests_per_s": round(requests_total / elapsed, 2), "errors": len(log["errors"]),
              "server_cpu_ms_per_request": round(1000 * cpu / max(1, requests_total), 1),
              "error_samples": log["errors"][:5], "refused_photos": len(log["refused"]),
              "registered": len(log["created"]), "deleted": len(log["deleted"]),
              "lost": len(expected - listed), "unexpected": len(listed - expected),
              "worker_rss_mib": {"start": round(rss_start / 2**20), "end": round(rss_end / 2**20),
                                 "peak": round(max(during, default=rss_end) / 2**20),
                                 "quarters": [round(during[min(len(during) - 1, len(during) * q // 4)] / 2**20)
                                              for q in (1, 2, 3)] if during else []},
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "latency": {op: percentiles(ms) for op, ms in log["ms"].items()}}
    for op in result["latency"]:
        result["latency"][op]["p99_ms"] = round(float(np.percentile(log["ms"][op], 99)), 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "load.json" if args.clients == 4 else f"load_{args.clients}clients.json"  # 4: the README's main table
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
