import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications import services

logger = logging.getLogger(__name__)

# The scan stops starting new batches after this long; the next minute's scan goes on.
SCAN_TIME_BUDGET_SECONDS = 50


@shared_task
def scan_reminders() -> dict:
    """Every minute (beat): remind once for every todo whose reminder time has passed."""
    started = time.monotonic()
    now = timezone.now()
    claimed_total = emailed_total = 0
    while time.monotonic() - started < SCAN_TIME_BUDGET_SECONDS:
        claimed, to_email = services.claim_reminder_batch(now, settings.REMINDER_BATCH_SIZE)
        services.enqueue_emails(to_email)  # after the batch's commit
        claimed_total += claimed
        emailed_total += len(to_email)
        if claimed < settings.REMINDER_BATCH_SIZE:
            break
    stuck = services.requeue_stuck_emails(now, limit=settings.REMINDER_BATCH_SIZE)
    services.enqueue_emails(stuck)
    result = {
        "reminded": claimed_total,
        "emails_queued": emailed_total,
        "emails_requeued": len(stuck),
    }
    if claimed_total or stuck:
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
def delete_old_notifications() -> int:
    """Daily housekeeping: drop read notifications past the retention period."""
    deleted = services.delete_old_notifications(timezone.now())
    logger.info("deleted old notifications", extra={"deleted": deleted})
    return deleted
