"""End-to-end latency over loopback HTTP: the real gunicorn server, the real embedded Chroma, phone-size photos;
and, in the same run, the peers' whole verify in process on the same photos.

    make bench-latency          # or: .venv/bin/python -m bench.latency [--rounds 5 --clients 1 2 4 8 --seconds 15]

Enrolls the people of ``../shared/data/photos`` (first usable photo each), then from one client times ``POST
/v1/verify`` (each other photo against its own person) and ``POST /v1/identify`` (every photo), several rounds;
then verify throughput and latency from 1, 2, 4 and 8 concurrent clients (each looping over the verify photos
for ``--seconds``), with the server's CPU time per request (user + system: what oversubscribed threads
waste shows there even when other work shares the machine). Also the server's start time (process start to
/readyz) and its worker's RSS once ready.
Rate limits are off in this server (the concurrent loop would trip the per-person verify limit).

With ``.venv-peers`` present (``make .venv-peers/.installed``), the server is stopped and verifyface and
face_recognition verify the same photos against the same reference photos in process (bench/peer_latency.py),
one client, same rounds; the ratios of medians are reported. Writes ``bench/results/latency.json`` (or
``--out``) and prints a Markdown table. Extra ``FACEID_*`` settings for the server: ``--env KEY=VALUE``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

from service.config import ROOT, load_settings

DATA = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
KEY = "bench-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    settings = load_settings()
    (data_dir / "models").symlink_to(settings.models_dir.resolve())
    port = free_port()
    env = {**os.environ, "FACEID_DATA_DIR": str(data_dir), "FACEID_BIND": f"127.0.0.1:{port}",
           "FACEID_ADMIN_KEYS": KEY, "FACEID_LOG_LEVEL": "WARNING", **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                             "service:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(2400):
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:  # listening before the worker is up
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"server did not start: {(data_dir / 'server.log').read_text()[-2000:]}")


def _workers(pid: int) -> list[Path]:
    found = []
    for child in Path("/proc").glob("[0-9]*"):
        try:
            if int((child / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(child)
        except (OSError, ValueError, IndexError):
            continue
    return found


def worker_rss(pid: int) -> int:
    """Resident memory (bytes) of the gunicorn workers under ``pid``."""
    return sum(int((w / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") for w in _workers(pid))


def worker_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the gunicorn workers under ``pid`` have used: the cost of a
    request that other load on a shared machine does not inflate the way it inflates wall time."""
    ticks = 0
    for w in _workers(pid):
        fields = (w / "stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentiles(ms: list[float]) -> dict:
    a = np.array(ms)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "mean_ms": round(float(a.mean()), 1)}


def enroll(session: requests.Session, base: str, people: dict[str, list[Path]]) -> tuple[dict, list]:
    """Each person's first photo the service accepts; every other photo becomes a probe."""
    enrolled: dict[str, Path] = {}
    probes: list[tuple[str, Path]] = []
    for name, photos in people.items():
        for photo in photos:
            if name not in enrolled:
                r = session.post(f"{base}/v1/persons", headers={"X-API-Key": KEY},
                                 data={"name": name, "person_id": name},
                                 files={"image": (photo.name, photo.read_bytes())})
                if r.status_code == 201:
                    enrolled[name] = photo
                    continue
            probes.append((name, photo))
    return enrolled, probes


def verify(session: requests.Session, base: str, name: str, data: bytes) -> tuple[float, bool]:
    t = time.perf_counter()
    r = session.post(f"{base}/v1/verify", headers={"X-API-Key": KEY}, data={"person_id": name},
                     files={"image": ("probe.jpg", data)})
    return 1000 * (time.perf_counter() - t), r.status_code == 200 and bool(r.json()["match"])


def sequential(base: str, enrolled: dict, probes: list, rounds: int) -> dict:
    session = requests.Session()
    verify_ms, identify_ms, verify_ok, identify_ok = [], [], 0, 0
    verify_probes = [(n, p.read_bytes()) for n, p in probes if n in enrolled]
    identify_probes = [(n, p.read_bytes()) for n, p in probes + list(enrolled.items())]
    for _ in range(rounds):
        for name, data in verify_probes:
            ms, ok = verify(session, base, name, data)
            verify_ms.append(ms)
            verify_ok += ok
        for name, data in identify_probes:
            t = time.perf_counter()
            r = session.post(f"{base}/v1/identify", headers={"X-API-Key": KEY}, files={"image": ("p.jpg", data)})
            identify_ms.append(1000 * (time.perf_counter() - t))
            match = r.json()["faces"][0]["match"] if r.status_code == 200 else None
            identify_ok += bool(match and match["person_id"] == name)
    return {"verify": {**percentiles(verify_ms), "accepted": f"{verify_ok}/{len(verify_ms)}"},
            "identify": {**percentiles(identify_ms), "correct": f"{identify_ok}/{len(identify_ms)}"}}


def concurrent(base: str, pid: int, verify_probes: list[tuple[str, bytes]], clients: int, seconds: float) -> dict:
    """``clients`` threads, each looping over the verify photos (from its own offset) until the deadline."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    accepted = [0] * clients
    deadline = time.monotonic() + seconds

    def loop(i: int) -> None:
        session, k = requests.Session(), i * len(verify_probes) // clients
        while time.monotonic() < deadline:
            name, data = verify_probes[k % len(verify_probes)]
            ms, ok = verify(session, base, name, data)
            latencies[i].append(ms)
            accepted[i] += ok
            k += 1
    started, cpu = time.monotonic(), worker_cpu_s(pid)
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.monotonic() - started, worker_cpu_s(pid) - cpu
    ms = [m for part in latencies for m in part]
    return {"clients": clients, "seconds": round(elapsed, 1), "requests_per_s": round(len(ms) / elapsed, 2),
            **percentiles(ms), "server_cpu_ms_per_request": round(1000 * cpu / max(1, len(ms)), 1),
            "accepted": f"{sum(accepted)}/{len(ms)}"}


def peers(enrolled: dict, probes: list, rounds: int) -> dict | None:
    """The peers' in-process verify of the same photos (bench/peer_latency.py in .venv-peers), or None."""
    if not PEERS_PYTHON.is_file():
        return None
    pairs = [[str(enrolled[n]), str(p)] for n, p in probes if n in enrolled]
    out = subprocess.run([str(PEERS_PYTHON), "-m", "bench.peer_latency", str(rounds)], input=json.dumps(pairs),
                         capture_output=True, text=True, cwd=ROOT, check=True)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    return {name: {**percentiles(r["ms"]), "accepted": f"{r['matched']}/{len(r['ms'])}"} for name, r in raw.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--env", nargs="*", default=[], help="FACEID_KEY=VALUE settings for the server")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    args = parser.parse_args(argv)
    people = {p.name: sorted(p.glob("*.jpg")) for p in sorted(args.photos.iterdir()) if p.is_dir()}
    extra = {"FACEID_RATE_LIMITS": "false", **dict(kv.split("=", 1) for kv in args.env)}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc, base = start_server(Path(tmp), extra)
        start_s = time.perf_counter() - t
        rss_start = worker_rss(proc.pid)
        try:
            enrolled, probes = enroll(requests.Session(), base, people)
            result = {"server_env": {k: v for k, v in extra.items()}, "start_s": round(start_s, 2),
                      "worker_rss_after_start_mib": round(rss_start / 2**20)}
            if args.rounds:
                result.update(sequential(base, enrolled, probes, args.rounds))
            verify_probes = [(n, p.read_bytes()) for n, p in probes if n in enrolled]
            result["verify_concurrent"] = [concurrent(base, proc.pid, verify_probes, c, args.seconds)
                                           for c in args.clients]
            result["worker_rss_end_mib"] = round(worker_rss(proc.pid) / 2**20)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    if not args.no_peers and args.rounds:
        found = peers(enrolled, probes, args.rounds)
        if found:
            result["peers_in_process_verify"] = found
            result["ratio_verify_p50_ours_http_over_peer_in_process"] = {
                name: round(result["verify"]["p50_ms"] / r["p50_ms"], 2) for name, r in found.items()}
    sizes = [max(__import__("PIL.Image", fromlist=["Image"]).open(p).size) for ps in people.values() for p in ps]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other work)",
              "rounds": args.rounds, "enrolled": len(enrolled), "photos": sum(len(v) for v in people.values()),
              "photo_longest_side_px": [min(sizes), max(sizes)], **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(markdown(result))


def markdown(result: dict) -> str:
    rows = ["| what | p50 ms | p95 ms | requests |", "|---|---|---|---|"]
    for op in ("verify", "identify"):
        if op in result:
            rows.append(f"| POST /v1/{op}, 1 client | {result[op]['p50_ms']} | {result[op]['p95_ms']} "
                        f"| {result[op]['n']} |")
    for name, r in result.get("peers_in_process_verify", {}).items():
        rows.append(f"| {name}, in process, same photos | {r['p50_ms']} | {r['p95_ms']} | {r['n']} |")
    rows += ["", "| verify clients | req/s | p50 ms | p95 ms | server CPU ms/request |", "|---|---|---|---|---|"]
    rows += [f"| {c['clients']} | {c['requests_per_s']} | {c['p50_ms']} | {c['p95_ms']} "
             f"| {c['server_cpu_ms_per_request']} |"
             for c in result["verify_concurrent"]]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
