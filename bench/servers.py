"""A real `chroma run` server on a free loopback port: for the benchmarks, and for the tests' fixtures."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_chroma(path: Path) -> tuple[str, subprocess.Popen]:
    """The server storing in ``path``, answering its heartbeat; RuntimeError if it does not within a minute."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(path), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if requests.get(f"{url}/api/v2/heartbeat", timeout=1).ok:
                return url, proc
        except requests.RequestException:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("chroma server did not start")
