"""Prometheus metrics on a port of their own: `/metrics` for scrapers, `/healthz` for probes.

Never through the public site: the app's URLconf has no metrics route, the port is not
on the Service the Ingress routes to, and a NetworkPolicy lets only the monitoring
namespace reach it (kustomize/base).

Under gunicorn the master serves the sum of its workers' metrics (gunicorn_metrics.py);
runserver (`invoke dev`, the kind cluster's development mode) is one process and serves
its own registry (config/wsgi.py).
"""

from __future__ import annotations

import logging
import os
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, make_wsgi_app

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
DEFAULT_WEB_PORT = 9100


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a stuck scrape never holds the process open on shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        """Scrapes every few seconds would drown the app's own lines."""


def metrics_app(registry: CollectorRegistry):
    """WSGI app: the registry at /metrics, 200 at /healthz, 404 elsewhere."""
    exposition = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return exposition(environ, start_response)
        if path == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"metrics are at {METRICS_PATH}\n".encode()]

    return app


def serve(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> _Server:
    """Serve the registry from a daemon thread of this process; returns the server."""
    disable_created_metrics()  # a `_created` series per counter is noise for dashboards
    server = make_server(host, port, metrics_app(registry), _Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics on http://%s:%d%s", host or "0.0.0.0", port, METRICS_PATH)  # noqa: S104
    return server


def serve_this_process() -> None:
    """runserver: serve this process's metrics, on the interface runserver listens on.

    Under gunicorn (multiprocess mode) the master serves them instead, so this does
    nothing there. A port already in use is logged, never fatal: the site matters more.
    """
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - app/bin/web's default
    port = int(os.environ.get("METRICS_PORT", DEFAULT_WEB_PORT))
    try:
        serve(host, port)
    except OSError as error:
        logger.error("metrics: cannot listen on %s:%d (%s)", host, port, error)
