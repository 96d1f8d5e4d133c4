"""gunicorn settings. Bind address from FACEID_BIND (via the service settings).

One worker process with threads: the models are loaded once and shared, ONNX Runtime and torch release the
GIL while they compute, and the embedded Chroma store (PersistentClient) must not be opened by two processes.
"""
from service.config import load_settings

_settings = load_settings()

bind = _settings.bind
workers = 1
worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 30
# The app (and its models) load in the master before forking; a broken model stops the start at once.
preload_app = True
accesslog = None  # the service writes its own structured request log
errorlog = "-"
