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

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2


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


def readiness() -> tuple[bool, dict[str, str]]:
    results = {name: "ok" if check() else "fail" for name, check in CHECKS.items()}
    return all(value == "ok" for value in results.values()), results
