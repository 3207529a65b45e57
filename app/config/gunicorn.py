"""gunicorn settings for the web process, read from the environment (app/bin/web).

Workers default to CPUs + 1 sync workers. The app's requests spend their time in Python
(a list page about 6 CPU ms), not waiting: one worker a CPU keeps the CPUs busy, the one
more covers a worker waiting on the database. gunicorn's starting point, 2 x CPUs + 1,
suits workers that mostly wait; on 2 CPUs its 5 workers cost 15 to 27% more CPU per
request than 3 and served the realistic mix 12 to 21% slower (docs/performance.md,
"gunicorn sizing"). A sync worker answers one request at a time and takes the next
connection from the listening socket only when it is free, so a request waits for the
first free worker, never behind a busy one. Threaded workers (GUNICORN_THREADS > 1
switches to them) keep each client's connection and serve it from the worker that
accepted it, however busy that worker is.
"""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "sync"  # gunicorn runs gthread workers instead when threads > 1
# A worker busy on one request for longer is killed and replaced (that request fails).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, in-flight requests get this long to finish; Kubernetes'
# terminationGracePeriodSeconds must be longer (plus the preStop delay).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
# Threaded workers only: sync workers close the connection after each response.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Worker heartbeat files: memory-backed where there is /dev/shm (gunicorn's advice, and
# writable under a read-only root filesystem), else the system temp directory.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", _SHM if os.path.isdir(_SHM) else None)
# Workers are forks of a master that has imported the app already. A worker replaced
# after max_requests then serves at once; importing Django again took seconds of CPU, and
# workers reaching max_requests together (they share the load evenly) left the server
# with none meanwhile: timeouts under load (docs/performance.md, "Worker recycling").
preload_app = True
# A safety net against slow leaks, not a routine: each replacement starts with cold caches
# (the per-process template fragments, prepared statements, a new database connection).
# Every 2,000 requests cost 15% of the list page's throughput and most of its p99 under load.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2000"))
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
proxy_allow_ips = forwarded_allow_ips

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("DJANGO_LOG_LEVEL", "info").lower()
# One JSON object per request (user agents and paths are escaped, unlike a format string).
logger_class = "core.gunicorn_logging.JsonAccessLogger"

# --- Prometheus metrics (observability/gunicorn_metrics.py) --------------------------------
# Every worker counts into files of PROMETHEUS_MULTIPROC_DIR (default: a new temporary
# folder); the master serves their sum on METRICS_PORT, a port the Ingress never routes.
metrics_port = int(os.environ.get("METRICS_PORT", "9100"))


if __name__ == "__config__":  # gunicorn loading this file; tests only read its values
    # prometheus_client picks its storage when first imported. With preload_app that is
    # the master importing the app, before any hook runs: name the folder now.
    from observability import gunicorn_metrics

    gunicorn_metrics.on_starting(None)


def when_ready(server):
    from observability import gunicorn_metrics

    # The interface gunicorn listens on (all of them in a container); "" means all.
    host = "" if bind.startswith("unix:") else bind.rpartition(":")[0]
    gunicorn_metrics.when_ready(server, host, metrics_port)


def pre_fork(server, worker):
    # Everything the master imported (the whole app, with preload_app) lives as long as the
    # worker does. Frozen, the worker's garbage collector never walks it: a full collection
    # of the imported app stalled a worker about 45 ms, and it stays out of copy-on-write.
    gc.freeze()


def post_fork(server, worker):
    # Traces, if OTEL_EXPORTER_OTLP_ENDPOINT is set: the exporter's thread and connection
    # belong to each worker, never to the master (observability/tracing.py).
    from observability import tracing

    tracing.start("web")


def child_exit(server, worker):
    from observability import gunicorn_metrics

    gunicorn_metrics.child_exit(server, worker)


def on_exit(server):
    from observability import gunicorn_metrics

    gunicorn_metrics.on_exit(server)


# No runtime control socket (gunicornc): the orchestrator scales and restarts pods, and the
# socket would need a writable $HOME.
control_socket_disable = True
