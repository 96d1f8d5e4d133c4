"""End-to-end latency over loopback HTTP: the real gunicorn server, the real embedded Chroma, phone-size photos.

    make bench-latency                     # or: .venv/bin/python -m bench.latency [--rounds 5]

Enrolls the people of ``../shared/data/photos`` (first usable photo each), then times ``POST /v1/verify``
(each other photo against its own person) and ``POST /v1/identify`` (every photo), sequentially from one
client, several rounds. Writes ``bench/results/latency.json`` and prints a Markdown table.
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
import time
from pathlib import Path

import numpy as np
import requests

from service.config import ROOT, load_settings

DATA = ROOT.parent / "shared" / "data" / "photos"
RESULTS = ROOT / "bench" / "results"
KEY = "bench-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    settings = load_settings()
    (data_dir / "models").symlink_to(settings.models_dir.resolve())
    port = free_port()
    env = {**os.environ, "FACEID_DATA_DIR": str(data_dir), "FACEID_BIND": f"127.0.0.1:{port}",
           "FACEID_ADMIN_KEYS": KEY, "FACEID_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                             "service:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:  # listening before the worker is up
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server did not start: {(data_dir / 'server.log').read_text()[-2000:]}")


def percentiles(ms: list[float]) -> dict:
    a = np.array(ms)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "mean_ms": round(float(a.mean()), 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    people = {p.name: sorted(p.glob("*.jpg")) for p in sorted(args.photos.iterdir()) if p.is_dir()}
    headers = {"X-API-Key": KEY}
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        session = requests.Session()
        try:
            enrolled, probes = {}, []
            for name, photos in people.items():
                for photo in photos:
                    if name in enrolled:
                        probes.append((name, photo))
                        continue
                    r = session.post(f"{base}/v1/persons", headers=headers, data={"name": name, "person_id": name},
                                     files={"image": (photo.name, photo.read_bytes())})
                    if r.status_code == 201:
                        enrolled[name] = photo
                    else:
                        probes.append((name, photo))
            verify_ms, identify_ms, verify_ok, identify_ok = [], [], 0, 0
            verify_probes = [(n, p) for n, p in probes if n in enrolled]
            for _ in range(args.rounds):
                for name, photo in verify_probes:
                    data = photo.read_bytes()
                    t = time.perf_counter()
                    r = session.post(f"{base}/v1/verify", headers=headers, data={"person_id": name},
                                     files={"image": (photo.name, data)})
                    verify_ms.append(1000 * (time.perf_counter() - t))
                    verify_ok += r.status_code == 200 and r.json()["match"]
                for name, photo in probes + list((n, p) for n, p in enrolled.items()):
                    data = photo.read_bytes()
                    t = time.perf_counter()
                    r = session.post(f"{base}/v1/identify", headers=headers, files={"image": (photo.name, data)})
                    identify_ms.append(1000 * (time.perf_counter() - t))
                    match = r.json()["faces"][0]["match"] if r.status_code == 200 else None
                    identify_ok += bool(match and match["person_id"] == name)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    sizes = [max(__import__("PIL.Image", fromlist=["Image"]).open(p).size) for ps in people.values() for p in ps]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "rounds": args.rounds,
              "enrolled": len(enrolled), "photos": sum(len(v) for v in people.values()),
              "photo_longest_side_px": [min(sizes), max(sizes)],
              "verify": {**percentiles(verify_ms), "accepted": f"{verify_ok}/{len(verify_ms)}"},
              "identify": {**percentiles(identify_ms), "correct": f"{identify_ok}/{len(identify_ms)}"}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print("| endpoint | p50 ms | p95 ms | requests |\n|---|---|---|---|")
    for op in ("verify", "identify"):
        print(f"| POST /v1/{op} | {result[op]['p50_ms']} | {result[op]['p95_ms']} | {result[op]['n']} |")


if __name__ == "__main__":
    main()
