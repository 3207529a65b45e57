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

import contextlib
import logging
import threading
import time
import zoneinfo
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import Notification
from todos.models import Todo

logger = logging.getLogger(__name__)

Status = Notification.EmailStatus
MAIL_CONNECTION_IDLE_SECONDS = 30
# Emails per deliver_emails task (each still claimed with its own lease just before it is
# sent): ~50 ms of work per task at the measured rate, so a scan's emails spread over
# every worker process (docs/performance.md, "Background work").
EMAIL_BATCH_SIZE = 25
# A queued email whose task never ran (the process died between commit and enqueue).
STALE_PENDING_AFTER = timedelta(minutes=10)


def enqueue_emails(notification_ids: list[int]) -> None:
    """One task per EMAIL_BATCH_SIZE emails: a message to the broker, and a task run in the
    worker, cost more than sending one email over an open connection."""
    from notifications.tasks import deliver_email, deliver_emails

    for start in range(0, len(notification_ids), EMAIL_BATCH_SIZE):
        batch = notification_ids[start : start + EMAIL_BATCH_SIZE]
        if len(batch) == 1:
            deliver_email.delay(batch[0])
        else:
            deliver_emails.delay(batch)


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


def _reminder_text(todo: DueReminder) -> tuple[str, str]:
    title = f"Reminder: {todo.title}"[:250]
    if todo.due_at is None:
        return title, "You asked to be reminded about this todo."
    zone = zoneinfo.ZoneInfo(todo.time_zone or settings.TIME_ZONE)
    due = timezone.localtime(todo.due_at, zone).strftime("%a %d %b %Y, %H:%M %Z")
    return title, f"It is due {due}."


# What a row Python cannot read or render raises (a time after 9999, a BC date, an
# unknown time zone), or the database when it refuses one.
DATA_ERRORS = (DatabaseError, ValueError, OverflowError, LookupError)


class DueReminder(NamedTuple):
    pk: int
    title: str
    due_at: datetime | None
    remind_at: datetime
    user_id: int
    time_zone: str
    email_reminders: bool


class ReminderBatch(NamedTuple):
    claimed: int  # todos the claim took, failed ones included (fewer: none are left)
    to_email: list[int]  # notifications whose email the caller queues after commit
    failed: list[int]  # todos left unclaimed: their reminder could not be made


_TODOS, _USERS = Todo._meta.db_table, Todo._meta.get_field("user").related_model._meta.db_table
# One statement claims the batch and returns what the notifications need. `due` takes the
# oldest due reminders no other transaction holds (SKIP LOCKED: overlapping scans split
# the work), once: MATERIALIZED, as a subquery the planner may run it again per row, and
# every run skips to other rows. FOR NO KEY UPDATE, the UPDATE's own lock, does not
# conflict with the KEY SHARE lock that a transaction inserting a row referencing the
# todo holds, so nothing but a change of the todo itself makes the scan skip it.
_CLAIM = f"""
    WITH due AS MATERIALIZED (
        SELECT id FROM {_TODOS}
        WHERE status = 'open' AND reminded_at IS NULL AND remind_at <= %(now)s
            AND NOT id = ANY(%(skip)s::bigint[])
        ORDER BY remind_at LIMIT %(limit)s
        FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE {_TODOS} AS todo SET reminded_at = %(now)s
    FROM due, {_USERS} AS owner
    WHERE todo.id = due.id AND todo.reminded_at IS NULL AND owner.id = todo.user_id
    RETURNING {{columns}}
"""  # noqa: S608 (table names from the models, values as parameters)
_CLAIM_ROWS = _CLAIM.format(
    columns="todo.id, todo.title, todo.due_at, todo.remind_at, todo.user_id, "
    "owner.time_zone, owner.email_reminders"
)
_CLAIM_IDS = _CLAIM.format(columns="todo.id")


def claim_reminder_batch(now, batch_size: int, skip: Iterable[int] = ()) -> ReminderBatch:
    """Claim up to `batch_size` due reminders (but none in `skip`) and create their
    notifications.

    Two statements per batch whatever its size: the claim (UPDATE ... RETURNING) and one
    INSERT of every notification. A todo whose reminder cannot be made (data Python cannot
    load or render) is left unclaimed and returned in `failed`, for the caller to report
    and skip; every other todo of the batch is reminded. The caller enqueues the emails
    after commit.
    """
    params = {"now": now, "limit": batch_size, "skip": list(skip)}
    failed: list[int] = []
    with transaction.atomic():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_CLAIM_ROWS, params)
                due = [DueReminder(*row) for row in cursor.fetchall()]
                claimed = len(due)
                to_email = _insert_notifications(_reminder_notifications(due, failed), now)
        except DATA_ERRORS:
            # A row that cannot be loaded fails the whole statement: take the rows one by one.
            failed.clear()
            claimed, to_email = _claim_one_by_one(now, params, failed)
        if failed:
            Todo.objects.filter(pk__in=failed).update(reminded_at=None)
    return ReminderBatch(claimed, to_email, failed)


def _claim_one_by_one(now, params: dict, failed: list[int]) -> tuple[int, list[int]]:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_IDS, params)
        claimed = [pk for (pk,) in cursor.fetchall()]
    to_email: list[int] = []
    for pk in claimed:
        try:
            with transaction.atomic():
                to_email += _insert_notifications(
                    _reminder_notifications([_due_reminder(pk)], failed), now
                )
        except DATA_ERRORS:
            failed.append(pk)
    return len(claimed), to_email


def _due_reminder(pk: int) -> DueReminder:
    row = Todo.objects.values_list(
        "pk",
        "title",
        "due_at",
        "remind_at",
        "user_id",
        "user__time_zone",
        "user__email_reminders",
    ).get(pk=pk)
    return DueReminder(*row)


def _reminder_notifications(due: list[DueReminder], failed: list[int]) -> list[tuple]:
    """The rows of the reminders' notifications; a todo that cannot be rendered (an
    unknown time zone, say) goes to `failed` instead."""
    rows = []
    for todo in due:
        try:
            title, body = _reminder_text(todo)
        except DATA_ERRORS:
            failed.append(todo.pk)
            continue
        status = Status.PENDING if todo.email_reminders else Status.NONE
        rows.append((todo.user_id, todo.pk, todo.remind_at, title, body, str(status)))
    return rows


_INSERT_REMINDERS = f"""
    INSERT INTO {Notification._meta.db_table} (user_id, todo_id, scheduled_for, title, body,
        email_status, kind, created_at, email_attempts, email_error)
    SELECT *, 'reminder', %s, 0, '' FROM unnest(
        %s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], %s::text[])
    ON CONFLICT DO NOTHING
    RETURNING id, email_status
"""  # noqa: S608


def _insert_notifications(rows: list[tuple], now) -> list[int]:
    """One INSERT for every row (arrays, so the statement is the same whatever the batch
    size); the ids of those to email. A reminder the unique constraint already holds
    (the same todo and time, re-armed) is not made twice."""
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_REMINDERS, [now, *map(list, zip(*rows, strict=True))])
        return [pk for pk, status in cursor.fetchall() if status == Status.PENDING]


def requeue_stuck_emails(now, limit: int) -> list[int]:
    """Emails queued long ago whose task never ran, or whose sender died mid-send."""
    stuck = Notification.objects.filter(
        Q(email_status=Status.PENDING, created_at__lt=now - STALE_PENDING_AFTER)
        | Q(email_status=Status.SENDING, email_lease_until__lt=now)
    ).values_list("pk", flat=True)[:limit]
    return list(stuck)


class ClaimedEmail(NamedTuple):
    pk: int
    subject: str
    body: str
    to: str


_CLAIM_EMAILS = f"""
    UPDATE {Notification._meta.db_table} AS notification
    SET email_status = 'sending', email_lease_until = %(until)s,
        email_attempts = notification.email_attempts + 1
    FROM {_USERS} AS owner
    WHERE notification.id = ANY(%(ids)s::bigint[]) AND owner.id = notification.user_id
        AND (notification.email_status = 'pending' OR (notification.email_status = 'sending'
             AND notification.email_lease_until < %(now)s))
    RETURNING notification.id, notification.title, notification.body, owner.email
"""  # noqa: S608


def claim_emails(notification_ids: list[int]) -> tuple[list[ClaimedEmail], list[int]]:
    """Take the right to send a batch of emails, in one statement: (claimed, busy).

    The lease lasts past the task's hard time limit, so no attempt of this batch can still
    be sending when it expires; the others are sent already, or failed for good ("done").
    """
    now = timezone.now()
    until = now + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_EMAILS, {"ids": notification_ids, "until": until, "now": now})
        claimed = {row[0]: ClaimedEmail(*row) for row in cursor.fetchall()}
    rest = [pk for pk in notification_ids if pk not in claimed]
    busy = list(
        Notification.objects.filter(pk__in=rest, email_status=Status.SENDING).values_list(
            "pk", flat=True
        )
        if rest
        else []
    )
    return [claimed[pk] for pk in notification_ids if pk in claimed], busy


def send_claimed_email(email: ClaimedEmail) -> None:
    try:
        send_mail(
            subject=email.subject,
            message=f"{email.body}\n\n— Todo",
            from_email=None,
            recipient_list=[email.to],
            connection=mail_connection(),
        )
    except Exception:
        close_mail_connection()
        raise
    _mark_sent(email.pk)


def release_emails(notification_ids: list[int]) -> None:
    """Claimed but not tried (a batch handed on after a failure): back to PENDING."""
    Notification.objects.filter(pk__in=notification_ids, email_status=Status.SENDING).update(
        email_status=Status.PENDING, email_lease_until=None
    )


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


class _MailConnections(threading.local):
    backend = None
    last_used = 0.0
    opened_for: tuple = ()  # the settings it was opened with (tests change them)


_mail = _MailConnections()


def mail_connection():
    """This thread's open connection to the mail server, reused by every email it sends.

    A new SMTP connection per email (connect, EHLO, STARTTLS, login, QUIT) cost more than
    the email itself (docs/performance.md, "Background work"). One that sat idle for
    MAIL_CONNECTION_IDLE_SECONDS is replaced before use, well before servers drop idle
    clients (RFC 5321 asks them to wait 5 minutes); one that failed is closed by
    `close_mail_connection` and opened again for the next email.
    """
    now = time.monotonic()
    target = (settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT)
    idle = now - _mail.last_used > MAIL_CONNECTION_IDLE_SECONDS
    if _mail.backend is not None and (idle or target != _mail.opened_for):
        close_mail_connection()
    if _mail.backend is None:
        _mail.backend = get_connection()
        _mail.backend.open()
        _mail.opened_for = target
    _mail.last_used = now
    return _mail.backend


def close_mail_connection() -> None:
    if _mail.backend is not None:
        backend, _mail.backend = _mail.backend, None
        with contextlib.suppress(Exception):  # it may be the connection that failed
            backend.close()


def send_notification_email(notification_id: int) -> None:
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    send_claimed_email(
        ClaimedEmail(
            notification.pk, notification.title, notification.body, notification.user.email
        )
    )


def _mark_sent(notification_id: int) -> None:
    # At once, one email at a time: a worker killed after this send re-sends none of
    # the emails before it once their lease expires.
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
