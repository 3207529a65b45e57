import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications import services
from observability.batch import report_failed_rows

logger = logging.getLogger(__name__)

# The scan stops starting new batches after this long; the next minute's scan goes on.
SCAN_TIME_BUDGET_SECONDS = 50


@shared_task(bind=True)
def scan_reminders(self) -> dict:
    """Every minute (beat): remind once for every todo whose reminder time has passed.

    A todo whose reminder cannot be made is skipped for the rest of the scan and reported
    (observability/batch.py); it stays due, so the next scan tries it again.
    """
    started = time.monotonic()
    now = timezone.now()
    batch_size = settings.REMINDER_BATCH_SIZE
    reminded = emailed_total = 0
    failed: list[int] = []
    while time.monotonic() - started < SCAN_TIME_BUDGET_SECONDS:
        batch = services.claim_reminder_batch(now, batch_size, skip=failed)
        services.enqueue_emails(batch.to_email)  # after the batch's commit
        reminded += batch.claimed - len(batch.failed)
        emailed_total += len(batch.to_email)
        failed += batch.failed
        if batch.claimed < batch_size:
            break
    report_failed_rows(self, "todos", failed, "no reminder made; retried next scan")
    stuck = services.requeue_stuck_emails(now, limit=batch_size)
    services.enqueue_emails(stuck)
    result = {
        "reminded": reminded,
        "emails_queued": emailed_total,
        "emails_requeued": len(stuck),
        "failed": len(failed),
    }
    if reminded or stuck or failed:
        logger.info("reminder scan", extra=result)
    return result


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
