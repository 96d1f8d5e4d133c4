"""gunicorn settings. Bind address from FACEID_BIND (via the service settings).

One worker process with threads: the models are loaded once and shared, OpenVINO releases the
GIL while it computes, and the embedded Chroma store (PersistentClient) must not be opened by two processes
(the data dir lock refuses a second one). With a Chroma server and PostgreSQL (FACEID_CHROMA_URL,
FACEID_DATABASE_URL) raise FACEID_WORKERS.

The settings are read and validated here, in the master, before any worker starts: a configuration error is
named once, plainly, and gunicorn exits 2 (instead of every worker failing to boot with a traceback).
"""
import os
import shutil
import sys
import tempfile

from service import worker as _worker
from service.config import load_settings
from service.errors import ConfigError

try:
    _settings = load_settings()
except ConfigError as _exc:
    print(f"faceid: configuration error: {_exc.message}", file=sys.stderr)
    sys.exit(2)
_worker.HEAD_TIMEOUT = _settings.server.request_head_timeout_s
_worker.READ_TIMEOUT = _settings.server.request_read_timeout_s
_worker.DRAIN_S = _settings.server.drain_s

# Prometheus multiprocess mode (service/web/metrics.py): every worker writes its samples here and any worker's
# /metrics sums them. Emptied at each start: samples of a previous run's processes must not be summed in. A
# directory made here (no PROMETHEUS_MULTIPROC_DIR given) is removed at exit (``on_exit``): each start would
# otherwise leave one behind in the temporary directory. A configuration reload (SIGHUP) reads this file
# again with the variable set, so the made one is remembered in GUNICORN_MADE_METRICS_DIR (not a FACEID_
# name: those are settings, and an unknown one is refused).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["GUNICORN_MADE_METRICS_DIR"] = \
        tempfile.mkdtemp(prefix="faceid-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, mode=0o700, exist_ok=True)

bind = _settings.server.bind
workers = _settings.server.workers
# gthread, with request heads read in the poller thread: slow clients cannot hold the worker threads.
worker_class = "service.worker.HeadFirstWorker"
threads = _settings.server.threads
timeout = 60
# SIGTERM: drain_s of /readyz 503 while serving, then up to 30 s for in-flight requests.
graceful_timeout = 30 + int(_settings.server.drain_s)
# The app loads in the worker, not the master: Chroma's embedded client must not cross a fork. A broken
# model or a locked data dir makes the worker fail to boot, and gunicorn exits with the reason in its log.
preload_app = False
accesslog = None  # the service writes its own structured request log
errorlog = "-"
# gunicorn's own lines (start, workers, errors) in the service's JSON format, one object per line.
logconfig_dict = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": []},  # the app configures the root logger itself (service.logs)
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Say when a worker has loaded the models and opened the store: it serves from now on."""
    worker.log.info("worker %s ready", worker.pid)


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """A dead worker's live gauges (the audit queue) leave the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """The samples' directory goes with the master when this start made it (an operator's stays)."""
    if os.environ.get("GUNICORN_MADE_METRICS_DIR") == _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
