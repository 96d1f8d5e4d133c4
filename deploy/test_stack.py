"""`make test-docker`: the image and the compose stack, as an operator runs them, on this machine's Docker.

Builds the base images (Debian packages) and the images, brings deploy/compose.yaml up (two instances on
PostgreSQL + a Chroma server, nginx in front), finds the first admin key where the README says, registers through
the proxy and verifies on each instance directly, then SIGKILLs one instance while a client keeps registering
and verifying through the proxy: every acknowledged registration must be readable afterwards, and only requests
in flight on the killed instance may fail. Then /metrics, the logs, and an instance started on a root-owned bind
mount. Numbers go to var/docker-test/result.json.

Where the build cannot reach PyPI itself (here: containers do not trust this machine's TLS-intercepting proxy),
PIP_INDEX_URL unset means: download the locked packages with the host's pip and serve them as a package index
on loopback for the build (deploy/local_index.py) -- the same build argument a private index uses.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OUT = ROOT / "var" / "docker-test"
PROJECT = "faceid-test"
TAG = "test"
PROXY = "http://127.0.0.1:18080"
INSTANCE = {"faceid-a": "http://127.0.0.1:18001", "faceid-b": "http://127.0.0.1:18002"}
PHOTOS = ["people/Joe_Biden/0001.jpg", "people/Barack_Obama/0001.jpg", "people/Kit_Harington/0001.jpg",
          "people/Rose_Leslie/0001.jpg", "people/Alex_Lacamoire/0001.jpg", "people/Lin_Manuel_Miranda/0001.jpg"]
result: dict = {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(*cmd: str, check: bool = True, capture: bool = False, env: dict | None = None,
        timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=capture, env=env, timeout=timeout)


def compose_cmd() -> list[str]:
    if run("docker", "compose", "version", check=False, capture=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    sys.exit("neither `docker compose` nor docker-compose is installed: apt-get install -y docker-compose")


COMPOSE = compose_cmd() + ["-p", PROJECT, "-f", str(DEPLOY / "compose.yaml"), "-f", str(DEPLOY / "compose.test.yaml")]
ENV = {**os.environ, "FACEID_TAG": TAG, "FACEID_HTTP_PORT": "127.0.0.1:18080"}


def compose(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(*COMPOSE, *args, env=ENV, **kw)


def photo(rel: str) -> bytes:
    return (ROOT / "tests" / "fixtures" / rel).read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_index() -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"], None
    house = ROOT / "var" / "wheelhouse"
    (house / "files").mkdir(parents=True, exist_ok=True)
    log("downloading the locked packages with the host's pip into var/wheelhouse (a local package index)")
    run(sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--no-deps", "-d", str(house / "files"),
        "-r", str(ROOT / "requirements.lock"), "-r", str(ROOT / "requirements-nodeps.lock"))
    run(sys.executable, str(DEPLOY / "local_index.py"), str(house))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=house,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return f"http://127.0.0.1:{port}/simple", server


def build_images() -> None:
    run(str(DEPLOY / "base-images.sh"))
    index, server = local_index()
    try:
        revision = run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD", capture=True).stdout.strip()
        started = time.monotonic()
        run("docker", "build", "--network", "host", "--build-arg", f"PIP_INDEX_URL={index}",
            "--build-arg", f"REVISION={revision}", "-t", f"faceid:{TAG}", str(ROOT),
            env={**os.environ, "DOCKER_BUILDKIT": "0"})
        result["image_build_s"] = round(time.monotonic() - started, 1)
    finally:
        if server is not None:
            server.terminate()
    for name, dockerfile in (("faceid-postgres", "postgres/Dockerfile"), ("faceid-proxy", "nginx/Dockerfile")):
        run("docker", "build", "-q", "-t", f"{name}:{TAG}", "-f", str(DEPLOY / dockerfile), str(DEPLOY),
            env={**os.environ, "DOCKER_BUILDKIT": "0"})
    size = int(run("docker", "image", "inspect", f"faceid:{TAG}", "--format", "{{.Size}}", capture=True).stdout)
    result["image_bytes"] = size
    packages = run("docker", "run", "--rm", "--entrypoint", "sh", f"faceid:{TAG}", "-c",
                   "ls /opt/venv/lib/python3.11/site-packages", capture=True).stdout.split()
    banned = [p for p in packages if re.match(r"(torch|torchvision|nvidia|triton|pytest|mypy|ruff|playwright|"
                                              r"schemathesis)[-_.]", p.lower())]
    result["banned_packages_in_image"] = banned
    assert not banned, banned
    log(f"image faceid:{TAG}: {size / 1e9:.2f} GB, built in {result['image_build_s']} s; no torch/test packages")


def wait_healthy(services: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {}
        for service in services:
            cid = compose("ps", "-q", service, capture=True).stdout.strip()
            states[service] = run("docker", "inspect", "--format", "{{.State.Health.Status}}", cid, check=False,
                                  capture=True).stdout.strip() if cid else "absent"
        if all(s == "healthy" for s in states.values()):
            return
        time.sleep(2)
    compose("logs", "--tail", "50", check=False)
    raise AssertionError(f"not healthy in {timeout}s: {states}")


def first_keys() -> tuple[str, str]:
    """What the README says: read the first-start file in faceid-a's volume."""
    text = compose("exec", "-T", "faceid-a", "cat", "/data/first-start-keys.txt", capture=True).stdout
    admin = re.search(r"admin key:\s+(\S+)", text)
    client = re.search(r"client key:\s+(\S+)", text)
    assert admin and client, text
    return admin.group(1), client.group(1)


def register(base: str, key: str, person_id: str, rel: str, timeout: float = 60) -> requests.Response:
    return requests.post(f"{base}/v1/persons", headers={"X-API-Key": key}, timeout=timeout,
                         data={"name": person_id, "person_id": person_id},
                         files={"image": (rel.split("/")[-1], photo(rel), "image/jpeg")})


def verify(base: str, key: str, person_id: str, rel: str, timeout: float = 60) -> requests.Response:
    return requests.post(f"{base}/v1/verify", headers={"X-API-Key": key}, timeout=timeout,
                         data={"person_id": person_id}, files={"image": (rel.split("/")[-1], photo(rel), "image/jpeg")})


def through_the_proxy(admin: str, client: str) -> None:
    answer = register(PROXY, client, "ada", "people/Joe_Biden/0001.jpg")
    assert answer.status_code == 201, answer.text
    for name, base in INSTANCE.items():
        answer = verify(base, client, "ada", "people/Joe_Biden/0002.jpg")
        assert answer.status_code == 200 and answer.json()["match"] is True, (name, answer.text)
    result["registered_via_proxy_verified_on"] = sorted(INSTANCE)
    log("registered through the proxy, verified (match) on faceid-a and on faceid-b directly")


def kill_one_instance(admin: str, client: str) -> None:
    acknowledged: list[str] = []
    failures: list[str] = []
    verifies = {"ok": 0, "failed": 0}
    stop = threading.Event()
    killed_at: list[float] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            person = f"w{n:04d}"
            try:
                answer = register(PROXY, client, person, PHOTOS[n % len(PHOTOS)], timeout=30)
                if answer.status_code == 201:
                    acknowledged.append(person)
                else:
                    failures.append(f"register {person}: {answer.status_code} {answer.text[:120]}")
            except requests.RequestException as exc:
                failures.append(f"register {person}: {type(exc).__name__}")
            n += 1

    def verifier() -> None:
        while not stop.is_set():
            try:
                ok = verify(PROXY, client, "ada", "people/Joe_Biden/0002.jpg", timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            verifies["ok" if ok else "failed"] += 1

    threads = [threading.Thread(target=writer), threading.Thread(target=verifier)]
    for t in threads:
        t.start()
    time.sleep(8)
    before_kill = len(acknowledged)
    compose("kill", "-s", "SIGKILL", "faceid-a")
    killed_at.append(time.monotonic())
    log(f"SIGKILLed faceid-a after {before_kill} acknowledged registrations; the client keeps going")
    time.sleep(15)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    missing = []
    for person in acknowledged:
        answer = requests.get(f"{INSTANCE['faceid-b']}/v1/persons/{person}", headers={"X-API-Key": admin}, timeout=30)
        if answer.status_code != 200:
            missing.append(f"{person}: {answer.status_code}")
    result["kill"] = {"acknowledged_writes": len(acknowledged), "acknowledged_before_kill": before_kill,
                      "lost_acknowledged_writes": len(missing), "failed_writes": failures,
                      "verifies_ok": verifies["ok"], "verifies_failed": verifies["failed"]}
    log(f"kill: {len(acknowledged)} writes acknowledged, {len(missing)} lost; failed writes {failures}; "
        f"verifies {verifies}")
    assert not missing, missing
    assert len(acknowledged) > before_kill, "no write was acknowledged after the kill"
    # Only what the proxy had already sent to the killed instance may fail (never acknowledged, so a client
    # retries it): the request in flight, and one written on a kept-alive connection to it before nginx saw it
    # die (a 502; a POST that was sent is never sent twice). Anything more is an outage, not a failover.
    assert len(failures) <= 2 and verifies["failed"] <= 2, (failures, verifies)
    assert all(": 502" in f or "Error" in f for f in failures), failures
    compose("start", "faceid-a")
    wait_healthy(["faceid-a"])


def metrics_and_logs(admin: str) -> None:
    token = (DEPLOY / "secrets" / "metrics_token").read_text().strip()
    answer = requests.get(f"{INSTANCE['faceid-b']}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(answer.text) for s in f.samples}
    requests_total = sum(v for (n, _), v in found.items() if n == "faceid_requests_total")
    gallery = found.get(("faceid_gallery_persons", ()), 0)
    result["metrics_b"] = {"requests_total": requests_total, "gallery_persons": gallery}
    assert requests_total > 0 and gallery >= 2
    assert requests.get(f"{PROXY}/metrics", timeout=10).status_code == 404  # never through the proxy
    logs = compose("logs", "--no-color", "faceid-a", "faceid-b", capture=True).stdout
    library_lines = [line for line in logs.splitlines() if '"logger": "httpx"' in line or "HTTP Request:" in line
                     or "Control server error" in line or "Permission denied" in line
                     or '"msg": "preparing model"' in line]  # the models come converted with the image
    result["library_request_log_lines"] = len(library_lines)
    assert not library_lines, library_lines[:3]
    log(f"/metrics on faceid-b: {requests_total:.0f} requests counted, gallery {gallery:.0f}; no library request "
        "lines, no permission errors, no conversion at start")
    cli = compose("exec", "-T", "faceid-b", "faceid-entrypoint", "python", "-m", "enroll", "keys", "list",
                  capture=True, check=False)
    result["cli_through_entrypoint"] = cli.returncode
    assert cli.returncode == 0 and "first admin key" in cli.stdout, (cli.stdout, cli.stderr)


def root_owned_bind_mount() -> None:
    folder = Path(tempfile.mkdtemp(prefix="faceid-bind-", dir="/var/tmp"))
    os.chown(folder, 0, 0)
    folder.chmod(0o755)
    try:
        plain = run("docker", "run", "--rm", "-v", f"{folder}:/data", f"faceid:{TAG}", check=False, capture=True,
                    timeout=120)
        assert plain.returncode == 78 and "sudo chown -R 10001:10001" in plain.stderr, (plain.returncode, plain.stderr)
        name = "faceid-test-bind"
        run("docker", "rm", "-f", name, check=False, capture=True)
        run("docker", "run", "-d", "--name", name, "--user", "0", "-v", f"{folder}:/data", f"faceid:{TAG}",
            capture=True)
        deadline = time.monotonic() + 240
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(3)
            status = run("docker", "inspect", "--format", "{{.State.Health.Status}}", name, capture=True).stdout.strip()
        users = run("docker", "top", name, "-o", "pid,uid,cmd", capture=True).stdout
        logs = run("docker", "logs", name, capture=True).stderr
        assert "Permission denied" not in logs and '"msg": "preparing model"' not in logs, logs[-2000:]
        owner = folder.stat().st_uid
        run("docker", "rm", "-f", name, capture=True)
        result["root_owned_bind_mount"] = {"default_user_exit": plain.returncode, "as_root_then_dropped": status,
                                           "folder_owner_after": owner}
        assert status == "healthy" and owner == 10001, (status, owner)
        assert all(line.split()[1] in ("10001", "faceid") for line in users.splitlines()[1:]
                   if "gunicorn" in line), users
        log("root-owned bind mount: the default user is told to chown (exit 78); --user 0 chowns, drops to 10001, "
            "healthy")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build_images()
    run(str(DEPLOY / "secrets.sh"))
    compose("down", "-v", "--remove-orphans", check=False, capture=True)
    try:
        up = time.monotonic()
        compose("up", "-d", "--no-build")
        wait_healthy(["db", "chroma", "faceid-a", "faceid-b", "proxy"])
        result["stack_up_s"] = round(time.monotonic() - up, 1)
        log(f"stack healthy in {result['stack_up_s']} s")
        admin, client = first_keys()
        through_the_proxy(admin, client)
        kill_one_instance(admin, client)
        metrics_and_logs(admin)
    finally:
        if os.environ.get("KEEP_STACK") != "1":
            compose("down", "-v", "--remove-orphans", check=False, capture=True)
    root_owned_bind_mount()
    result["total_s"] = round(time.monotonic() - started, 1)
    result["passed"] = True
    (OUT / "result.json").write_text(json.dumps(result, indent=2))
    log(f"passed in {result['total_s']} s; {OUT / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
