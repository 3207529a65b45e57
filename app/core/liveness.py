"""Liveness files for the worker and beat, and the probe that reads them.

Kubernetes probes these processes without the web: the worker touches its file from
its event loop, beat on every scheduler tick. `app/bin/probe worker|beat` exits 0
while the file is fresh. Standard library only, so the probe starts in milliseconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

WORKER_INTERVAL_SECONDS = 10
BEAT_MAX_TICK_SECONDS = 30  # beat_max_loop_interval: beat ticks at least this often
# A process is dead when its file is older than a few missed intervals.
STALE_AFTER_SECONDS = {"worker": 6 * WORKER_INTERVAL_SECONDS, "beat": 4 * BEAT_MAX_TICK_SECONDS}
FILE_NAMES = {"worker": "worker.heartbeat", "beat": "beat.tick"}


def state_dir() -> Path:
    return Path(os.environ.get("CELERY_HEARTBEAT_DIR", "/tmp"))  # noqa: S108


def liveness_file(process: str) -> Path:
    return state_dir() / FILE_NAMES[process]


def touch(process: str) -> None:
    path = liveness_file(process)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def age_seconds(process: str) -> float | None:
    try:
        return time.time() - liveness_file(process).stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in FILE_NAMES:
        print("usage: probe worker|beat", file=sys.stderr)
        return 2
    process = argv[0]
    age = age_seconds(process)
    limit = STALE_AFTER_SECONDS[process]
    if age is None:
        print(f"{process}: no liveness file at {liveness_file(process)}", file=sys.stderr)
        return 1
    if age > limit:
        print(f"{process}: last sign of life {age:.0f}s ago (limit {limit}s)", file=sys.stderr)
        return 1
    print(f"{process}: alive ({age:.0f}s ago)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
