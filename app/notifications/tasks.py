import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications import services
from observability.batch import report_failed_rows

logger = logging.getLogger(__name__)

# The scan stops starting new batches after this long; the next minute's scan goes on.
SCAN_TIME_BUDGET_SECONDS = 50


@shared_task(bind=True)
def scan_reminders(self) -> dict:
    """Every minute (beat): remind once for every todo whose reminder time has passed.

    REMINDER_SCAN_THREADS claimers take batches side by side, each on its own database
    connection; SKIP LOCKED keeps their claims apart. A claim's time is PostgreSQL's, not
    Python's, so a second connection puts a second core to work. One claimer runs in the
    calling thread, on its connection and in its transaction.

    A todo whose reminder cannot be made is skipped for the rest of the scan and reported
    (observability/batch.py); it stays due, so the next scan tries it again.
    """
    started, now = time.monotonic(), timezone.now()
    claimers = settings.REMINDER_SCAN_THREADS
    if claimers == 1:
        claims = [claim_until_done(now, started)]
    else:
        with ThreadPoolExecutor(claimers, thread_name_prefix="reminder-scan") as pool:
            running = [pool.submit(claim_in_thread, now, started) for _ in range(claimers)]
            claims = [claimer.result() for claimer in running]
    failed = sorted({pk for claim in claims for pk in claim.failed})
    report_failed_rows(self, "todos", failed, "no reminder made; retried next scan")
    stuck = services.requeue_stuck_emails(now, limit=settings.REMINDER_BATCH_SIZE)
    services.enqueue_emails(stuck)
    result = {
        "reminded": sum(claim.reminded for claim in claims),
        "emails_queued": sum(claim.emails_queued for claim in claims),
        "emails_requeued": len(stuck),
        "failed": len(failed),
    }
    if result["reminded"] or stuck or failed:
        logger.info("reminder scan", extra=result)
    return result


@dataclass
class Claims:
    """What one claimer of a scan did."""

    reminded: int = 0
    emails_queued: int = 0
    failed: list[int] = field(default_factory=list)


def claim_until_done(now, started: float) -> Claims:
    """Claim batches until one comes back short (nothing more is due) or the time is up."""
    batch_size, claims = settings.REMINDER_BATCH_SIZE, Claims()
    while time.monotonic() - started < SCAN_TIME_BUDGET_SECONDS:
        batch = services.claim_reminder_batch(now, batch_size, skip=claims.failed)
        services.enqueue_emails(batch.to_email)  # after the batch's commit
        claims.reminded += batch.claimed - len(batch.failed)
        claims.emails_queued += len(batch.to_email)
        claims.failed += batch.failed
        if batch.claimed < batch_size:
            break
    return claims


def claim_in_thread(now, started: float) -> Claims:
    """claim_until_done() in a thread of its own, which closes the connection it opened."""
    try:
        return claim_until_done(now, started)
    finally:
        connection.close()


@shared_task(bind=True, max_retries=settings.NOTIFICATION_EMAIL_MAX_RETRIES)
def deliver_email(self, notification_id: int) -> str:
    """Send one notification's email at most once per successful attempt, retrying failures.

    Retries back off exponentially (30 s, 60 s, 120 s, ...); after the last one the
    notification shows "Email failed" in the app.
    """
    state = services.claim_email(notification_id)
    if state == "busy":
        # Another attempt holds the lease (or died holding it): look again once it expires.
        raise self.retry(countdown=settings.NOTIFICATION_EMAIL_LEASE_SECONDS + 1)
    if state == "done":
        return "already handled"
    try:
        services.send_notification_email(notification_id)
    except Exception as error:
        final = self.request.retries >= self.max_retries
        services.release_email(notification_id, error, final=final)
        if final:
            return "failed"
        raise self.retry(countdown=30 * 2**self.request.retries, exc=error) from error
    return "sent"


@shared_task
def deliver_emails(notification_ids: list[int]) -> dict[str, int]:
    """Send a batch of notifications' emails over this worker's open SMTP connection.

    One statement claims the batch with a lease (`services.claim_emails`), and each email
    is marked sent as soon as it is, so a redelivered batch sends none twice. An email
    whose lease another attempt holds goes on alone as `deliver_email`; so does one that
    fails, with its retries, and the rest of the batch after it (a server that times out
    costs one timeout here, not one per email): one bad email never holds up the others.
    """
    claimed, busy = services.claim_emails(notification_ids)
    for notification_id in busy:
        deliver_email.apply_async(
            (notification_id,), countdown=settings.NOTIFICATION_EMAIL_LEASE_SECONDS + 1
        )
    outcomes = {
        "sent": 0,
        "already handled": len(notification_ids) - len(claimed) - len(busy),
        "handed on": len(busy),
    }
    for position, email in enumerate(claimed):
        try:
            services.send_claimed_email(email)
        except Exception as error:
            services.release_email(email.pk, error, final=False)
            rest = [pending.pk for pending in claimed[position:]]
            services.release_emails(rest[1:])
            for pk in rest:
                deliver_email.apply_async((pk,), countdown=30)
            outcomes["handed on"] += len(rest)
            break
        outcomes["sent"] += 1
    return outcomes


@shared_task
def delete_old_notifications() -> int:
    """Daily housekeeping: drop read notifications past the retention period."""
    deleted = services.delete_old_notifications(timezone.now())
    logger.info("deleted old notifications", extra={"deleted": deleted})
    return deleted
