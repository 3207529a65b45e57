"""Beat's last tick, kept where the Celery exporter can read it.

Beat's liveness file (core/liveness.py) lives in beat's own /tmp, which the exporter,
another pod, cannot see. So beat also writes each tick's time to the broker's Redis,
which both already use. With the embedded filesystem broker (`invoke dev` without
REDIS_URL) every process runs on one machine: the exporter reads the liveness file.
"""

from __future__ import annotations

import logging
import time
from functools import cache

import redis
from django.conf import settings

from core import liveness

logger = logging.getLogger(__name__)

TICK_KEY = "todo:celery:beat:last-tick"
# Beat must never wait on this for long: a broker that is down stops its sends anyway.
TIMEOUT_SECONDS = 2

_recording = {"failing": False}


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )


def record_tick(now: float | None = None) -> None:
    """Called on every scheduler tick; a failure is logged once, never raised."""
    if not settings.REDIS_URL:
        return
    try:
        _client().set(TICK_KEY, repr(now if now is not None else time.time()))
    except redis.RedisError as error:
        if not _recording["failing"]:
            logger.warning("beat: cannot record the tick in Redis (%s)", error)
        _recording["failing"] = True
    else:
        _recording["failing"] = False


def last_tick() -> float | None:
    """Unix time of beat's last tick, or None if beat never ticked (raises RedisError)."""
    if settings.REDIS_URL:
        value = _client().get(TICK_KEY)
        return float(value) if value else None
    age = liveness.age_seconds("beat")
    return None if age is None else time.time() - age
