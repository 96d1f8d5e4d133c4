"""Slow clients cannot stop the service: sockets that trickle a request head hold no worker thread, a body
shorter than its Content-Length is answered 408 once it stalls, and the service keeps answering meanwhile.
Real gunicorn (config/gunicorn.conf.py, service/worker.py), loopback only, every loop bounded."""
import json
import signal
import socket
import threading
import time

import pytest
import requests

from .helpers import ADMIN, start_gunicorn


@pytest.fixture(scope="module")
def server(tmp_path_factory, settings, app):
    data_dir = tmp_path_factory.mktemp("slow")
    proc, base = start_gunicorn(data_dir, settings.models_dir, FACEID_REQUEST_HEAD_TIMEOUT_S="3",
                                FACEID_REQUEST_READ_TIMEOUT_S="2", FACEID_THREADS="4")
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def test_trickling_sockets_hold_no_thread(server):
    """Four threads, 32 sockets each sending one header line a second: /readyz still answers at once."""
    sockets = []
    for _ in range(32):
        s = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        sockets.append(s)
    stop = threading.Event()

    def trickle():
        for _ in range(10):  # bounded: at most 10 s
            for s in sockets:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            if stop.wait(1):
                return
    threading.Thread(target=trickle, daemon=True).start()
    try:
        time.sleep(1.5)
        for _ in range(3):
            assert requests.get(f"{server}/readyz", timeout=5).status_code == 200
        time.sleep(3)  # past the head deadline: the slow sockets are closed by the server
        closed = 0
        for s in sockets:
            s.settimeout(2)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(sockets)
    finally:
        stop.set()
        for s in sockets:
            s.close()


def test_a_body_shorter_than_its_content_length_gets_408(server):
    s = socket.create_connection(("127.0.0.1", port_of(server)), timeout=15)
    head = (f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN['X-API-Key']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    started = time.monotonic()
    s.sendall(head.encode() + b'{"image": "')
    assert requests.get(f"{server}/readyz", timeout=5).status_code == 200  # meanwhile, others are served
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    status_line, _, rest = reply.partition(b"\r\n")
    assert b" 408 " in status_line, reply[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 12


def _answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response read off ``sock``: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length]


def _post(path: str, key: str, body: bytes, length: int | None = None) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


@pytest.mark.parametrize("path,key,status,length", [
    ("/v1/identify", "not-a-key-0123456789", 401, None),
    ("/v1/keys", "e2e-client-key-0123456789", 403, None),         # a client key on an admin endpoint
    ("/v1/detect", "e2e-client-key-0123456789", 413, 100_000_000),  # over max_request_bytes, refused unread
])
def test_an_answer_before_the_body_says_when_the_connection_closes(server, path, key, status, length):
    """gunicorn drains 64 KiB of a body the app did not read, then closes: the answer must say so, and a
    small body's connection stays usable."""
    if length is None:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
            sock.sendall(_post(path, key, b"x" * 1000))  # drainable: kept alive, the next request is served
            head, _ = _answer(sock)
            assert head.startswith(f"HTTP/1.1 {status}".encode()) and b"Connection: keep-alive" in head, head
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(sock)[0].startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(_post(path, key, b"x" * 300_000, length))
        head, body = _answer(sock)
        assert head.startswith(f"HTTP/1.1 {status}".encode()) and json.loads(body)["error"]["code"]
        assert b"Connection: close" in head, head
        rest = b""
        try:  # the server closes: nothing more, then the end of the stream (or a reset: our bytes went unread)
            while chunk := sock.recv(65536):
                rest += chunk
        except ConnectionResetError:
            pass
        assert rest == b""
