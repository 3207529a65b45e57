"""Worker benchmark steps that run inside Django (bench/harness.py starts them).

    python -m bench.reminders scan     # the reminder scan until nothing is due
    python -m bench.reminders emails   # reminder notifications by email state

Each prints its figures as one BENCH_RESULT line. Run with app/ on PYTHONPATH and
DJANGO_SETTINGS_MODULE set (the harness uses config.settings.bench on its own database).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from unittest import mock

from bench import RESULT_MARKER

MAX_SCANS = 20  # bounded: a scan stops after its time budget, the next one goes on


@dataclass(frozen=True)
class Batch:
    claimed: int
    seconds: float
    queries: int


def due_reminders() -> int:
    from django.utils import timezone

    from todos.models import Todo

    return Todo.objects.filter(
        status=Todo.Status.OPEN, reminded_at__isnull=True, remind_at__lte=timezone.now()
    ).count()


def measure_scan() -> dict:
    """Run `scan_reminders` (in this process, as the worker would) until nothing is due.

    Every batch it claims (`claim_reminder_batch`) is timed, and its SQL statements
    counted; the email tasks the scan queues go to the broker as in production.
    """
    from django.conf import settings
    from django.db import connection

    from notifications import services, tasks

    batches: list[Batch] = []
    claim = services.claim_reminder_batch

    def measured_claim(now, batch_size, skip=()):
        statements = 0

        def count(execute, sql, params, many, context):
            nonlocal statements
            statements += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            batch = claim(now, batch_size, skip)
        batches.append(Batch(batch.claimed, time.perf_counter() - started, statements))
        return batch

    # A worker runs the scan with its broker connection open and kombu's transport
    # imported; this process opens its producer first, so neither is timed.
    with tasks.scan_reminders.app.producer_or_acquire():
        pass
    due = due_reminders()
    scans = []
    started = time.perf_counter()
    with mock.patch.object(services, "claim_reminder_batch", measured_claim):
        while len(scans) < MAX_SCANS:
            scans.append(tasks.scan_reminders())
            if scans[-1]["reminded"] == 0 or not due_reminders():
                break
    seconds = time.perf_counter() - started
    return summarise_scan(due, seconds, scans, batches, settings.REMINDER_BATCH_SIZE)


def summarise_scan(
    due: int, seconds: float, scans: list[dict], batches: list[Batch], batch_size: int
) -> dict:
    working = [batch for batch in batches if batch.claimed]
    times = [batch.seconds * 1000 for batch in working] or [0.0]
    return {
        "due": due,
        "reminded": sum(scan["reminded"] for scan in scans),
        "emails_queued": sum(scan["emails_queued"] for scan in scans),
        "seconds": seconds,
        "scans": len(scans),
        "batch_size": batch_size,
        "batches": len(working),
        "batch_ms_p50": statistics.median(times),
        "batch_ms_max": max(times),
        # Distinct statement counts of the batches that claimed work: one value when the
        # cost per batch is constant.
        "queries_per_batch": sorted({batch.queries for batch in working}),
    }


def email_states() -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Notification

    rows = (
        Notification.objects.filter(kind=Notification.Kind.REMINDER)
        .values("email_status")
        .annotate(count=Count("pk"))
    )
    return {row["email_status"]: row["count"] for row in rows}


def main(argv: list[str]) -> int:
    import django

    steps = {"scan": measure_scan, "emails": email_states}
    if len(argv) != 1 or argv[0] not in steps:
        print(f"usage: python -m bench.reminders {'|'.join(steps)}", file=sys.stderr)
        return 2
    django.setup()
    print(RESULT_MARKER + json.dumps(steps[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
