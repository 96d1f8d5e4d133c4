"""gunicorn settings. Bind address from FACEID_BIND (via the service settings).

One worker process with threads: the models are loaded once and shared, OpenVINO releases the
GIL while it computes, and the embedded Chroma store (PersistentClient) must not be opened by two processes
(the data dir lock refuses a second one). With a Chroma server and PostgreSQL (FACEID_CHROMA_URL,
FACEID_DATABASE_URL) raise FACEID_WORKERS.
"""
from service import worker as _worker
from service.config import load_settings

_settings = load_settings()
_worker.HEAD_TIMEOUT = _settings.request_head_timeout_s
_worker.READ_TIMEOUT = _settings.request_read_timeout_s

bind = _settings.bind
workers = _settings.workers
# gthread, with request heads read in the poller thread: slow clients cannot hold the worker threads.
worker_class = "service.worker.HeadFirstWorker"
threads = _settings.threads
timeout = 60
graceful_timeout = 30
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
