"""Process-wide lifecycle state shared by the gunicorn worker and the app, without either importing the other.

``draining`` is set when the worker got SIGTERM: from then /readyz answers 503 (a load balancer or a proxy's
health check takes the instance out) while requests are still served, for ``drain_s`` seconds; only then does
the worker stop accepting and finish its in-flight requests (``service.worker``).
"""
from __future__ import annotations

import threading

draining = threading.Event()
