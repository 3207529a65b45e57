"""Reminders and notification email: claimed atomically in the database, sent after commit.

Exactly once for reminders rests on three things, none on the broker:
- a scan claims due todos with SELECT ... FOR NO KEY UPDATE SKIP LOCKED plus a conditional
  UPDATE of `reminded_at`, and creates the notifications in the same transaction, so
  overlapping scans split the work instead of repeating it;
- a unique constraint on (todo, scheduled_for) refuses a second reminder for one time;
- email goes out through `deliver_email`, which claims the notification with a lease
  before sending, so a redelivered task does not send again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import Notification, forget_unread_counts
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


def _due_text(due_at: datetime, time_zone: str) -> str:
    """The due time in the owner's zone with its abbreviation (JST, CEST): the one part of
    a reminder's text rendered in Python, as neither engine names a zone's abbreviation
    at a given instant (PostgreSQL only in the session's zone, SQLite knows no zones)."""
    if timezone.is_naive(due_at):  # SQLite returns the stored UTC time without its zone
        due_at = due_at.replace(tzinfo=UTC)
    zone = zoneinfo.ZoneInfo(time_zone or settings.TIME_ZONE)
    return f"It is due {timezone.localtime(due_at, zone):%a %d %b %Y, %H:%M %Z}."


# What a row Python cannot read or render raises (a time after 9999, a BC date, an
# unknown time zone), or the database when it refuses one.
DATA_ERRORS = (DatabaseError, ValueError, OverflowError, LookupError)


class ReminderBatch(NamedTuple):
    claimed: int  # todos the claim took, failed ones included (fewer: none are left)
    to_email: list[int]  # notifications whose email the caller queues after commit
    failed: list[int]  # todos left unclaimed: their reminder could not be made


_TODOS, _USERS = Todo._meta.db_table, Todo._meta.get_field("user").related_model._meta.db_table
_DUE = f"""
    SELECT id FROM {_TODOS}
    WHERE status = 'open' AND reminded_at IS NULL AND remind_at <= %(now)s
        AND id NOT IN (SELECT CAST(value AS BIGINT) FROM {{json_elements}}(%(skip)s))
    ORDER BY remind_at LIMIT %(limit)s
"""  # noqa: S608 (table names from the models, values as parameters)
# One statement claims the batch and returns what Python renders (the due time in the
# owner's zone). Where the engines differ:
# - PostgreSQL: FOR NO KEY UPDATE SKIP LOCKED takes the oldest due reminders no other
#   transaction holds (overlapping scans split the work). The UPDATE's own lock, it does
#   not conflict with the KEY SHARE lock of a transaction inserting a row that references
#   the todo. ARRAY(...) runs the claim once, as an InitPlan, and the UPDATE finds the
#   rows by primary key: as `IN (...)` the planner hash-joined it with a scan of every
#   todo, 2/3 of the batch's time on 100,000 todos (docs/performance.md).
# - SQLite has no row locks (its IMMEDIATE transactions take turns: one scan at a time)
#   nor arrays, and RETURNING may read only the updated table.
_CLAIM = {
    "postgresql": f"""
        UPDATE {_TODOS} AS todo SET reminded_at = %(now)s
        FROM {_USERS} AS owner
        WHERE todo.id = ANY(ARRAY({_DUE.format(json_elements="json_array_elements_text")}
                                  FOR NO KEY UPDATE SKIP LOCKED))
            AND todo.reminded_at IS NULL AND owner.id = todo.user_id
        RETURNING {{columns}}
    """,  # noqa: S608
    "sqlite": f"""
        UPDATE {_TODOS} SET reminded_at = %(now)s
        WHERE id IN ({_DUE.format(json_elements="json_each")}) AND reminded_at IS NULL
        RETURNING {{columns}}
    """,  # noqa: S608
}
# (the rows Python renders, the ids alone) for each engine's claim.
_CLAIM_COLUMNS = {
    "postgresql": ("todo.id, todo.due_at, owner.time_zone", "todo.id"),
    "sqlite": (
        f"id, due_at, (SELECT time_zone FROM {_USERS} WHERE {_USERS}.id = {_TODOS}.user_id)",  # noqa: S608
        "id",
    ),
}


def _claim_sql(ids_only: bool = False) -> str:
    columns = _CLAIM_COLUMNS[connection.vendor][ids_only]
    return _CLAIM[connection.vendor].format(columns=columns)


def claim_reminder_batch(now, batch_size: int, skip: Iterable[int] = ()) -> ReminderBatch:
    """Claim up to `batch_size` due reminders (but none in `skip`) and create their
    notifications.

    Two statements per batch whatever its size, in one transaction: the claim (UPDATE ...
    RETURNING the due times) and one INSERT ... SELECT of every notification, which
    renders in SQL all but the due time. A todo whose reminder cannot be made (data Python
    cannot load or render) is left unclaimed and returned in `failed`, for the caller to
    report and skip; every other todo of the batch is reminded. The caller enqueues the
    emails after commit.
    """
    params = {
        "now": connection.ops.adapt_datetimefield_value(now),
        "limit": batch_size,
        "skip": json.dumps(list(skip)),
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_claim_sql(), params)
            due = cursor.fetchall()
            failed: list[int] = []
            to_email = _insert_notifications(_due_texts(due, failed), params["now"])
            if failed:
                Todo.objects.filter(pk__in=failed).update(reminded_at=None)
            return ReminderBatch(len(due), to_email, failed)
    except DATA_ERRORS:
        # A row that cannot be loaded fails the whole batch: take its rows one by one.
        return _claim_one_by_one(params)


def _due_texts(due: Iterable[tuple], failed: list[int]) -> dict[int, str | None]:
    """Each claimed todo's due-time text (None: it has no due time); a todo whose text
    cannot be rendered (an unknown time zone, say) goes to `failed` instead."""
    texts = {}
    for pk, due_at, time_zone in due:
        try:
            texts[pk] = None if due_at is None else _due_text(due_at, time_zone)
        except DATA_ERRORS:
            failed.append(pk)
    return texts


def _claim_one_by_one(params: dict) -> ReminderBatch:
    failed: list[int] = []
    to_email: list[int] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_claim_sql(ids_only=True), params)
            claimed = [pk for (pk,) in cursor.fetchall()]
        for pk in claimed:
            try:
                with transaction.atomic():
                    row = Todo.objects.values_list("pk", "due_at", "user__time_zone").get(pk=pk)
                    to_email += _insert_notifications(_due_texts([row], failed), params["now"])
            except DATA_ERRORS:
                failed.append(pk)
        if failed:
            Todo.objects.filter(pk__in=failed).update(reminded_at=None)
    return ReminderBatch(len(claimed), to_email, failed)


# The due texts travel as one JSON object {todo id: text or null}: one parameter, the
# same statement whatever the batch size, read by each engine's own JSON function.
_INSERT_REMINDERS = f"""
    INSERT INTO {Notification._meta.db_table} (user_id, todo_id, scheduled_for, title, body,
        email_status, kind, created_at, email_attempts, email_error)
    SELECT todo.user_id, todo.id, todo.remind_at, substr('Reminder: ' || todo.title, 1, 250),
        COALESCE(made.value, 'You asked to be reminded about this todo.'),
        CASE WHEN owner.email_reminders THEN '{Status.PENDING}' ELSE '{Status.NONE}' END,
        '{Notification.Kind.REMINDER}', %(now)s, 0, ''
    FROM {{json_fields}}(%(texts)s) AS made
        JOIN {_TODOS} AS todo ON todo.id = CAST(made.key AS BIGINT)
        JOIN {_USERS} AS owner ON owner.id = todo.user_id
    WHERE TRUE  -- SQLite reads an ON after a join as the join's without it
    ON CONFLICT DO NOTHING
    RETURNING id, email_status, user_id
"""  # noqa: S608
_INSERT = {
    "postgresql": _INSERT_REMINDERS.format(json_fields="json_each_text"),
    "sqlite": _INSERT_REMINDERS.format(json_fields="json_each"),
}


def _insert_notifications(texts: dict[int, str | None], now) -> list[int]:
    """One INSERT for every todo in `texts`; the ids of the notifications to email. A
    reminder the unique constraint already holds (the same todo and time, re-armed) is
    not made twice."""
    if not texts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_INSERT[connection.vendor], {"now": now, "texts": json.dumps(texts)})
        made = cursor.fetchall()
    forget_unread_counts([user_id for _, _, user_id in made])  # set-based: no model signal
    return [pk for pk, status, _ in made if status == Status.PENDING]


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
    UPDATE {Notification._meta.db_table} SET email_status = 'sending',
        email_lease_until = %(until)s, email_attempts = email_attempts + 1
    WHERE id {{in_ids}}
        AND (email_status = 'pending' OR (email_status = 'sending'
             AND email_lease_until < %(now)s))
    RETURNING id, title, body,
        (SELECT email FROM {_USERS} WHERE {_USERS}.id = {Notification._meta.db_table}.user_id)
"""  # noqa: S608
# The ids as one JSON array; PostgreSQL finds them by primary key through ARRAY(...).
_CLAIM_EMAILS_SQL = {
    "postgresql": _CLAIM_EMAILS.format(
        in_ids="= ANY(ARRAY(SELECT CAST(value AS BIGINT) FROM json_array_elements_text(%(ids)s)))"
    ),
    "sqlite": _CLAIM_EMAILS.format(in_ids="IN (SELECT value FROM json_each(%(ids)s))"),
}


def claim_emails(notification_ids: list[int]) -> tuple[list[ClaimedEmail], list[int]]:
    """Take the right to send a batch of emails, in one statement: (claimed, busy).

    The lease lasts past the task's hard time limit, so no attempt of this batch can still
    be sending when it expires; the others are sent already, or failed for good ("done").
    """
    now, adapt = timezone.now(), connection.ops.adapt_datetimefield_value
    until = now + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5)
    params = {"ids": json.dumps(notification_ids), "until": adapt(until), "now": adapt(now)}
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_EMAILS_SQL[connection.vendor], params)
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
