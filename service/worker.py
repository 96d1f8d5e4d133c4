"""The gunicorn worker the service runs: gthread, but each HTTP/1 request head is read in the poller thread.

Why: gthread hands a connection to a pool thread as soon as it has bytes, and the thread then blocks until
the whole head arrives, so a few clients trickling a header line a second hold every thread and the service
stops answering (measured: 8 such sockets made /readyz time out). Here the head is buffered without a thread
and only a complete request reaches the pool: 8, 64 or 800 trickling sockets leave /readyz at ~3 ms. A head
must arrive within ``HEAD_TIMEOUT`` seconds (from accept, or from a kept-alive connection becoming readable
again), a head over ``MAX_HEAD`` bytes gets 431, and once a thread serves a request every read or write may
stall at most ``READ_TIMEOUT`` seconds (a body shorter than its Content-Length frees the thread then; the app
answers 408). Both timeouts are settings (``request_head_timeout_s``, ``request_read_timeout_s``), set by
config/gunicorn.conf.py. TLS, uwsgi and HTTP/2 prior-knowledge connections take gthread's own path.

An answer given before the body was read (401, 403 or 413 on a large upload) says ``Connection: close`` when
gunicorn will close the connection after it: gunicorn drains at most 64 KiB of an unread body before reusing
a connection, and closed it beyond that while the answer said keep-alive, so a client's next request on it
failed (10 of 10). The app cannot say it itself: gunicorn drops hop-by-hop headers an app sets.

Coupled to gunicorn 27's gthread internals (TConn, enqueue_req, keepalived_conns,
on_client_socket_readable, murder_pending, the parser's unreader, the body readers, the drain cap, the
response's force_close): gunicorn is pinned, and tests/test_slow_clients.py must pass on an upgrade.
"""
import contextlib
import errno
import selectors
import socket
import threading
import time
from functools import partial
from typing import Any

from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.parser import _DRAIN_MAX_BYTES
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from .lifecycle import draining

HEAD_TIMEOUT = 5.0    # whole head, from accept (new conn) or from readable again (kept-alive conn)
READ_TIMEOUT = 10.0   # longest stall of one recv/send while a pool thread serves the request
MAX_HEAD = 64 * 1024  # a bigger head is answered 431 by the poller
DRAIN_S = 5.0         # SIGTERM -> /readyz 503 for this long, still serving; then gthread's graceful stop
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"


class _TimeoutSock(socket.socket):
    """Blocking mode means READ_TIMEOUT per call; after one stalled read all later reads fail."""
    stalled = False

    def setblocking(self, flag: bool) -> None:
        self.settimeout(READ_TIMEOUT if flag else 0.0)

    def recv(self, n: int, flags: int = 0) -> bytes:
        if self.stalled:
            raise TimeoutError("read stalled")
        try:
            return super().recv(n, flags)
        except TimeoutError:
            self.stalled = True
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:  # a stall limit per send(), not a whole deadline
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]


def _undrainable(body: Any) -> bool:
    """Whether gunicorn's drain of what the app left of ``body`` will give up (and close the connection)."""
    reader = getattr(body, "reader", None)
    if isinstance(reader, LengthReader):
        return bool(reader.length + body.buf.tell() >= _DRAIN_MAX_BYTES)
    return isinstance(reader, ChunkedReader) and reader.parser is not None  # its size is unknown: assume so


def closing_when_undrainable(app: Any) -> Any:
    """WSGI middleware: a response sent while the body cannot be drained is marked ``Connection: close``."""
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            response = getattr(start_response, "__self__", None)  # gunicorn's Response
            if response is not None and _undrainable(environ.get("wsgi.input")):
                response.force_close()
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return wrapped


class HeadFirstWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[TConn, float] = {}  # conn -> deadline, while its head is being buffered

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: drain first (see ``service.lifecycle``), then gthread's own graceful stop. A second SIGTERM
        stops at once."""
        if DRAIN_S <= 0 or draining.is_set():
            return super().handle_exit(sig, frame)
        draining.set()
        self.log.info("draining: /readyz answers 503 for %.1fs, then in-flight requests finish", DRAIN_S)
        timer = threading.Timer(DRAIN_S, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = closing_when_undrainable(getattr(self, "wsgi"))  # noqa: B009 - gunicorn's untyped attribute

    def accept(self, listener: socket.socket) -> None:
        try:
            s, addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        name = listener.getsockname()
        if (self.cfg.is_ssl or getattr(self.cfg, "protocol", "http") != "http"
                or negotiation.prior_knowledge_allowed(self.cfg, addr)):
            return self.enqueue_req(TConn(self.cfg, s, addr, name))  # TLS, uwsgi, h2c: stock path
        s = _TimeoutSock(s.family, s.type, s.proto, fileno=s.detach())
        self.read_head(TConn(self.cfg, s, addr, name))  # TConn makes it non-blocking

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:  # a kept-alive conn sends again
        if not isinstance(conn.sock, _TimeoutSock):
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.read_head(conn)

    def read_head(self, conn: TConn) -> None:
        conn.head, self.heads[conn] = bytearray(), time.monotonic() + HEAD_TIMEOUT
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_data, conn))

    def on_head_data(self, conn: TConn, sock: socket.socket) -> None:  # main thread, non-blocking socket
        try:
            data = socket.socket.recv(sock, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        start = max(len(conn.head) - 3, 0)
        conn.head += data
        if data and len(conn.head) > MAX_HEAD:
            with contextlib.suppress(OSError):
                sock.send(TOO_LARGE)  # best effort, non-blocking
            data = b""
        if not data:
            return self.drop(conn)
        if conn.head.find(b"\r\n\r\n", start) >= 0:
            self.poller.unregister(sock)
            del self.heads[conn]
            conn.init()  # plain HTTP/1: only builds the parser, no I/O
            conn.parser.unreader.unread(bytes(conn.head))
            conn.data_ready = True
            self.enqueue_req(conn)

    def drop(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        del self.heads[conn]
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:  # run() calls this after every poll, at least once a second
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.heads.items()):
            if deadline <= now or (not self.alive and not conn.head):
                self.drop(conn)
