"""Reminders and notification email: claimed atomically in the database, sent after commit.

Exactly once for reminders rests on three things, none on the broker:
- a scan claims due todos with SELECT ... FOR UPDATE SKIP LOCKED plus a conditional
  UPDATE of `reminded_at`, and creates the notifications in the same transaction, so
  overlapping scans split the work instead of repeating it;
- a unique constraint on (todo, scheduled_for) refuses a second reminder for one time;
- email goes out through `deliver_email`, which claims the notification with a lease
  before sending, so a redelivered task does not send again.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import Notification
from todos.models import Todo

logger = logging.getLogger(__name__)

Status = Notification.EmailStatus
# A queued email whose task never ran (the process died between commit and enqueue).
STALE_PENDING_AFTER = timedelta(minutes=10)


def enqueue_emails(notification_ids: list[int]) -> None:
    from notifications.tasks import deliver_email

    for notification_id in notification_ids:
        deliver_email.delay(notification_id)


def send_welcome_email_on_commit(user) -> Notification:
    # Read from the start: the user did not ask for it, so a new account shows no unread
    # badge. The row still carries the email's delivery (exactly once, like reminders).
    notification = Notification.objects.create(
        user=user,
        kind=Notification.Kind.WELCOME,
        read_at=timezone.now(),
        title="Welcome to Todo",
        body=(
            f"Hi {user.name}, your account is ready. Add todos with due dates and reminders; "
            "we will remind you here, and by email if you opt in on your profile."
        ),
        email_status=Status.PENDING,
    )
    # robust: a broker outage must not fail the signup; the scan re-queues stale emails.
    transaction.on_commit(lambda: enqueue_emails([notification.pk]), robust=True)
    return notification


def _reminder_text(todo: dict) -> tuple[str, str]:
    title = f"Reminder: {todo['title']}"[:250]
    if todo["due_at"] is None:
        return title, "You asked to be reminded about this todo."
    zone = zoneinfo.ZoneInfo(todo["user__time_zone"] or settings.TIME_ZONE)
    due = timezone.localtime(todo["due_at"], zone).strftime("%a %d %b %Y, %H:%M %Z")
    return title, f"It is due {due}."


def claim_reminder_batch(now, batch_size: int) -> tuple[int, list[int]]:
    """Claim up to `batch_size` due reminders and create their notifications.

    Returns (claimed, ids of notifications to email). A constant number of queries
    per batch, whatever its size. The caller enqueues the emails after commit.
    """
    with transaction.atomic():
        due = (
            Todo.objects.filter(
                status=Todo.Status.OPEN, reminded_at__isnull=True, remind_at__lte=now
            )
            .order_by("remind_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:batch_size]
        )
        ids = list(due)
        if not ids:
            return 0, []
        Todo.objects.filter(pk__in=ids, reminded_at__isnull=True).update(reminded_at=now)
        todos = Todo.objects.filter(pk__in=ids).values(
            "pk",
            "title",
            "due_at",
            "remind_at",
            "user_id",
            "user__time_zone",
            "user__email_reminders",
        )
        notifications = []
        for todo in todos:
            title, body = _reminder_text(todo)
            notifications.append(
                Notification(
                    user_id=todo["user_id"],
                    todo_id=todo["pk"],
                    kind=Notification.Kind.REMINDER,
                    scheduled_for=todo["remind_at"],
                    title=title,
                    body=body,
                    email_status=Status.PENDING if todo["user__email_reminders"] else Status.NONE,
                )
            )
        created = Notification.objects.bulk_create(notifications)
        to_email = [n.pk for n in created if n.email_status == Status.PENDING]
    return len(ids), to_email


def requeue_stuck_emails(now, limit: int) -> list[int]:
    """Emails queued long ago whose task never ran, or whose sender died mid-send."""
    stuck = Notification.objects.filter(
        Q(email_status=Status.PENDING, created_at__lt=now - STALE_PENDING_AFTER)
        | Q(email_status=Status.SENDING, email_lease_until__lt=now)
    ).values_list("pk", flat=True)[:limit]
    return list(stuck)


def claim_email(notification_id: int) -> str:
    """Take the right to send this notification's email: 'claimed', 'busy' or 'done'."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id)
        .filter(
            Q(email_status=Status.PENDING)
            | Q(email_status=Status.SENDING, email_lease_until__lt=now)
        )
        .update(
            email_status=Status.SENDING,
            email_lease_until=now + timedelta(seconds=settings.NOTIFICATION_EMAIL_LEASE_SECONDS),
            email_attempts=F("email_attempts") + 1,
        )
    )
    if claimed:
        return "claimed"
    in_flight = Notification.objects.filter(pk=notification_id, email_status=Status.SENDING)
    return "busy" if in_flight.exists() else "done"


def send_notification_email(notification_id: int) -> None:
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    send_mail(
        subject=notification.title,
        message=f"{notification.body}\n\n— Todo",
        from_email=None,
        recipient_list=[notification.user.email],
    )
    Notification.objects.filter(pk=notification_id).update(
        email_status=Status.SENT,
        email_sent_at=timezone.now(),
        email_lease_until=None,
        email_error="",
    )


def release_email(notification_id: int, error: Exception, final: bool) -> None:
    """After a failed attempt: back to PENDING for the retry, or FAILED for good."""
    Notification.objects.filter(pk=notification_id, email_status=Status.SENDING).update(
        email_status=Status.FAILED if final else Status.PENDING,
        email_lease_until=None,
        email_error=f"{type(error).__name__}"[:250],
    )
    logger.warning(
        "email for notification %s failed (%s)%s",
        notification_id,
        type(error).__name__,
        ", giving up" if final else ", will retry",
    )


def delete_old_notifications(now) -> int:
    cutoff = now - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    deleted, _ = Notification.objects.filter(read_at__isnull=False, read_at__lt=cutoff).delete()
    return deleted
