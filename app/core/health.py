"""Liveness and readiness checks for probes and load balancers.

Failures are logged with their cause; the response names only the component, so
no connection string or exception text ever reaches a client.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection
from prometheus_client import Gauge

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2

# Each probe's outcome per component, from web's side: the broker's stays visible here (and in
# the TodoCeleryBrokerUnreachable alert) although it never makes web unready. In gunicorn, the
# most recent value of the live workers (a dead worker's value goes with it).
CHECK_UP = Gauge(
    "todo_readiness_check_up",
    "1 if web's last readiness check of the component passed, else 0",
    ["check"],
    multiprocess_mode="livemostrecent",
)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("readiness: database check failed", exc_info=True)
        # A broken connection must not be reused by the next request of this thread.
        connection.close_if_unusable_or_obsolete()
        return False
    return True


@functools.cache
def _broker_client(url: str) -> redis.Redis:
    """One client per broker URL and process: its pool keeps the connection between probes,
    so readiness is not bound by connection setup (a broken connection is replaced)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )


def check_broker() -> bool:
    try:
        if settings.REDIS_URL:
            _broker_client(settings.REDIS_URL).ping()
        else:
            queue = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
            if not queue.is_dir():
                raise OSError(f"{queue} is not a directory")
    except Exception:
        logger.warning("readiness: broker check failed", exc_info=True)
        return False
    return True


CHECKS = {"database": check_database, "broker": check_broker}
# What web needs to serve pages: accounts, sessions and todos are all in PostgreSQL. The
# broker only carries background work, which waits in the database meanwhile (emails are
# queued again by the reminder scan), so a broker outage is reported, never a reason to take
# every web pod out of its Service.
REQUIRED = frozenset({"database"})


def readiness() -> tuple[bool, str, dict[str, str]]:
    """(ready, status, checks): status is "ok", "degraded" (ready, an optional check
    failed) or "fail" (a required check failed: not ready)."""
    results = {name: "ok" if check() else "fail" for name, check in CHECKS.items()}
    for name, result in results.items():
        CHECK_UP.labels(name).set(1 if result == "ok" else 0)
    ready = all(results[name] == "ok" for name in REQUIRED)
    if not ready:
        return False, "fail", results
    return True, "ok" if "fail" not in results.values() else "degraded", results
