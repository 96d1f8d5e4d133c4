"""Bulk enrollment through the API as an operator runs it, then identify on what it built.

    nice -n 10 .venv/bin/python -m bench.enroll [--persons N] [--jobs 3]

A fresh gunicorn (config/gunicorn.conf.py, embedded store, default settings) on a temp data dir;
``python -m enroll import --csv ... --url ...`` as a subprocess with an admin key, on LFW (deep-funneled,
../shared/data/lfw, one person per folder):

* people with >= 2 photos: every photo but the last is imported, the last is a *mated* probe;
* people with one photo: every other one is imported, the rest are *strangers* (non-mated probes).

Then every probe goes to POST /v1/identify (``--jobs`` at a time). ``rank1``: mated probes whose best
candidate is their person (of those whose person was enrolled); ``open_set_far``: strangers matched to anyone
at the service's open-set threshold (of those with a face). The per-key rate limit is off on this server
(``rate_limits = false``): at its default (1200/minute) one key cannot go past 20 requests a second, which is
the bulk rate under test. Writes ``bench/results/enroll.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from service.config import load_settings

from .datasets import DATA
from .servers import free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def split(lfw: Path, persons: int | None) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]], list[Path]]:
    """(gallery rows, mated probes, stranger probes), in name order; ``persons`` keeps the first N people."""
    people = sorted(d for d in lfw.iterdir() if d.is_dir())[:persons]
    gallery, mated, strangers = [], [], []
    singles = 0
    for person in people:
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2:
            gallery += [(person.name, p) for p in photos[:-1]]
            mated.append((person.name, photos[-1]))
        elif photos:
            if singles % 2 == 0:
                gallery.append((person.name, photos[0]))
            else:
                strangers.append(photos[0])
            singles += 1
    return gallery, mated, strangers


def start_service(data_dir: Path, models_dir: Path, admin_key: str) -> tuple[subprocess.Popen, str]:
    (data_dir / "models").symlink_to(models_dir.resolve())
    port = free_port()
    env = {**os.environ, "FACEID_DATA_DIR": str(data_dir), "FACEID_BIND": f"127.0.0.1:{port}",
           "FACEID_ADMIN_KEYS": admin_key, "FACEID_RATE_LIMITS": "false", "FACEID_DRAIN_S": "0"}
    log = open(data_dir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "service:create_app()"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the service did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (gunicorn's master and workers), from /proc:
    what an import costs, whatever else shares the cores."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            pids += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def identify(base: str, key: str, path: Path) -> dict[str, Any] | None:
    """The first face's answer, or None when the probe has no face (422)."""
    with path.open("rb") as f:
        r = requests.post(f"{base}/v1/identify", headers={"X-API-Key": key},
                          files={"image": (path.name, f, "image/jpeg")}, timeout=120)
    if r.status_code == 422:
        return None
    r.raise_for_status()
    return dict(r.json()["faces"][0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=None, help="only the first N people (default: all)")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "enroll.json")
    args = parser.parse_args(argv)
    settings = load_settings()
    gallery, mated, strangers = split(DATA / "lfw", args.persons)
    work = Path(tempfile.mkdtemp(prefix="faceid-bench-enroll-"))
    key = secrets.token_urlsafe(24)
    (work / "data").mkdir()
    proc, base = start_service(work / "data", settings.models_dir, key)
    try:
        listing = work / "gallery.csv"
        with listing.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["person_id", "path"])
            out.writerows((pid, str(path)) for pid, path in gallery)
        load_before, started = os.getloadavg()[0], time.monotonic()
        server_cpu, client_cpu = cpu_seconds(proc.pid), _children_cpu()
        progress = work / "import.log"  # progress lines every 30 s: tail -f it
        print(f"importing {len(gallery)} photos; progress in {progress}", file=sys.stderr)
        with progress.open("w") as log:
            run = subprocess.run([sys.executable, "-m", "enroll", "import", "--csv", str(listing), "--url", base,
                                  "--jobs", str(args.jobs), "--report", str(work / "rejected.csv"),
                                  "--progress-every", "30"], cwd=ROOT, env={**os.environ, "ENROLL_API_KEY": key},
                                 stdout=subprocess.PIPE, stderr=log, text=True)
        wall, load_after = time.monotonic() - started, os.getloadavg()[0]
        server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, _children_cpu() - client_cpu
        err = progress.read_text().splitlines()
        if run.returncode != 0:
            raise RuntimeError("\n".join(err[-20:]))
        summary = json.loads(err[-2])
        print(err[-1], file=sys.stderr)

        enrolled = {o["person_id"] for o in map(json.loads, run.stdout.splitlines()) if o["status"] == "enrolled"}
        with ThreadPoolExecutor(args.jobs) as pool:
            mated_answers = list(pool.map(lambda m: identify(base, key, m[1]), mated))
            stranger_answers = list(pool.map(lambda p: identify(base, key, p), strangers))
        scored = [(pid, a) for (pid, _), a in zip(mated, mated_answers) if pid in enrolled]
        hits = sum(1 for pid, a in scored if a and a["candidates"] and a["candidates"][0]["person_id"] == pid)
        matched = sum(1 for pid, a in scored if a and a["match"] and a["match"]["person_id"] == pid)
        faced = [a for a in stranger_answers if a is not None]
        false_matches = sum(1 for a in faced if a["match"])
        result = {
            "command": ".venv/bin/python -m bench.enroll"
                       + (f" --persons {args.persons}" if args.persons else "") + f" --jobs {args.jobs}",
            "data": "LFW deep-funneled (../shared/data/lfw)" + (f", first {args.persons} people" if args.persons
                                                                 else ", every person"),
            "model": settings.recognition.model, "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            # The cores are shared: the 1-minute load average when the import started and when it ended.
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "jobs": args.jobs, "server": "gunicorn, 1 worker x 4 threads, embedded store, rate limits off",
            "photos": summary["photos"], "import_seconds": round(wall, 1),
            "images_per_s": summary["photos_per_s"],
            # CPU per photo, server (gunicorn) and importer: what the rate would be on two idle cores is about
            # 2 / (server + importer), whatever shared the machine during the run.
            "server_cpu_ms_per_photo": round(1000 * server_cpu / max(summary["photos"], 1), 1),
            "importer_cpu_ms_per_photo": round(1000 * client_cpu / max(summary["photos"], 1), 1),
            "persons_enrolled": summary["persons_enrolled"],
            "faces_enrolled": summary["enrolled"] + summary["added"],
            "rejected_by_reason": summary["rejected_by_code"],
            "mated_probes": len(mated), "mated_probes_enrolled": len(scored),
            "mated_probes_without_face": sum(1 for _, a in scored if a is None),
            "rank1": round(hits / len(scored), 4) if scored else None,
            "rank1_matched_above_threshold": round(matched / len(scored), 4) if scored else None,
            "strangers": len(strangers), "strangers_without_face": len(strangers) - len(faced),
            "open_set_far": round(false_matches / len(faced), 4) if faced else None,
            "open_set_false_matches": false_matches,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        print(Counter(o["status"] for o in map(json.loads, run.stdout.splitlines())), file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
