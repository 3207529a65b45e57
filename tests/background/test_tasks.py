"""Celery tasks against the real database (called in-process; the broker tests are separate)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from notifications import services
from notifications.models import Notification
from notifications.tasks import (
    delete_old_notifications,
    deliver_email,
    deliver_emails,
    scan_reminders,
)
from todos.models import Todo

Status = Notification.EmailStatus


def due_todos(user, count: int, **fields) -> list[Todo]:
    past = timezone.now() - timedelta(minutes=5)
    return Todo.objects.bulk_create(
        Todo(
            user=user, title=f"due {i}", remind_at=past, due_at=past + timedelta(hours=1), **fields
        )
        for i in range(count)
    )


@pytest.mark.django_db
class TestReminderScan:
    def test_reminds_due_todos_once(self, make_user):
        optin, quiet = make_user("optin", email_reminders=True), make_user("quiet")
        [mine] = due_todos(optin, 1)
        due_todos(quiet, 2)
        future = Todo.objects.create(
            user=optin, title="later", remind_at=timezone.now() + timedelta(hours=1)
        )
        done = due_todos(optin, 1, status=Todo.Status.DONE)[0]

        result = scan_reminders.apply().get()
        assert result == {"reminded": 3, "emails_queued": 1, "emails_requeued": 0, "failed": 0}
        notification = Notification.objects.get(todo=mine)
        assert (
            notification.title == "Reminder: due 0" and notification.email_status == Status.PENDING
        )
        assert Notification.objects.filter(user=quiet, email_status=Status.NONE).count() == 2
        assert not Notification.objects.filter(todo__in=[future, done]).exists()

        again = scan_reminders.apply().get()
        assert again["reminded"] == 0
        assert Notification.objects.filter(kind="reminder").count() == 3

    def test_the_users_badge_shows_the_reminders_at_once(
        self, user_client, user, django_capture_on_commit_callbacks
    ):
        assert Notification.objects.filter(user=user).count() == 0
        user_client.get(reverse("todos:list"))  # the badge (nothing unread) into the cache
        due_todos(user, 2)
        with django_capture_on_commit_callbacks(execute=True):
            scan_reminders.apply().get()
        html = user_client.get(reverse("todos:list")).content.decode()
        assert '2<span class="visually-hidden"> unread' in html

    def test_moving_the_reminder_later_reminds_again(self, user):
        [todo] = due_todos(user, 1)
        scan_reminders.apply()
        later = timezone.now() - timedelta(seconds=1)
        todo.refresh_from_db()
        todo.set_schedule(todo.due_at, remind_at=later)
        todo.save()
        scan_reminders.apply()
        assert Notification.objects.filter(todo=todo).count() == 2

    def test_body_shows_the_due_time_in_the_users_zone(self, make_user):
        user = make_user("tokyo", time_zone="Asia/Tokyo")
        due = timezone.now().replace(microsecond=0) + timedelta(hours=2)
        Todo.objects.create(user=user, title="t", due_at=due, remind_at=timezone.now())
        scan_reminders.apply()
        body = Notification.objects.get(user=user).body
        assert body.endswith(
            f"{due.astimezone(timezone.zoneinfo.ZoneInfo('Asia/Tokyo')):%H:%M} JST."
        )

    def test_each_batch_costs_the_same_queries_whatever_its_size(self, make_user):
        counts = []
        for size in (5, 50):
            due_todos(make_user(f"batch{size}"), size)
            with CaptureQueriesContext(connection) as queries:
                claimed, *_ = services.claim_reminder_batch(timezone.now(), batch_size=1000)
            assert claimed == size
            counts.append(len(queries))
        assert counts[0] == counts[1]

    def test_large_backlogs_are_taken_in_bounded_batches(self, user, settings):
        settings.REMINDER_BATCH_SIZE = 10
        due_todos(user, 35)
        with CaptureQueriesContext(connection) as queries:
            result = scan_reminders.apply().get()
        assert result["reminded"] == 35
        claims = [q for q in queries.captured_queries if "SKIP LOCKED" in q["sql"]]
        assert len(claims) == 4  # 10 + 10 + 10 + 5


@pytest.mark.django_db(transaction=True)
def test_overlapping_scans_remind_each_todo_once_and_email_at_most_once(
    make_user, settings, smtp_server
):
    """Two scans at once (two beats by mistake, or a slow scan), then every email twice."""
    settings.REMINDER_BATCH_SIZE = 25
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", int(smtp_server.url.rsplit(":", 1)[1])
    optin, quiet = make_user("optin", email_reminders=True), make_user("quiet")
    due_todos(optin, 150)
    due_todos(quiet, 150)
    queued: list[list[int]] = []

    def scan(_):
        try:
            claimed_total = 0
            while True:
                claimed, to_email, _ = services.claim_reminder_batch(timezone.now(), 25)
                queued.append(to_email)
                claimed_total += claimed
                if claimed == 0:
                    return claimed_total
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        claimed = list(pool.map(scan, range(2)))
    assert sum(claimed) == 300
    per_todo = Notification.objects.filter(kind="reminder").values_list("todo_id", flat=True)
    assert len(per_todo) == len(set(per_todo)) == 300

    # Every email task delivered twice (a redelivery), from two threads at once.
    email_ids = [pk for batch in queued for pk in batch]
    assert len(email_ids) == 150

    def deliver(pk):
        try:
            return deliver_email.apply(args=[pk]).get(propagate=False)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(deliver, email_ids + email_ids))
    assert outcomes.count("sent") == 150
    assert len(smtp_server.messages) == 150
    assert Notification.objects.filter(email_status=Status.SENT).count() == 150


@pytest.mark.django_db(transaction=True)
def test_claimers_side_by_side_remind_each_todo_once_and_add_up(make_user, settings, caplog):
    """The scan's claimers on connections of their own (production's REMINDER_SCAN_THREADS):
    every due todo reminded once, their counts summed, a bad row reported once."""
    settings.REMINDER_SCAN_THREADS, settings.REMINDER_BATCH_SIZE = 3, 20
    due_todos(make_user("optin", email_reminders=True), 100)
    due_todos(make_user("quiet"), 150)
    nowhere = make_user("nowhere")
    type(nowhere).objects.filter(pk=nowhere.pk).update(time_zone="Nowhere/Atlantis")
    [bad] = due_todos(nowhere, 1)
    with CaptureQueriesContext(connection) as queries:
        result = scan_reminders.apply().get()

    assert result == {"reminded": 250, "emails_queued": 100, "emails_requeued": 0, "failed": 1}
    # The claims ran on the claimers' connections, not on this one.
    assert not [q for q in queries.captured_queries if "SKIP LOCKED" in q["sql"]]
    reminded = Notification.objects.filter(kind="reminder").values_list("todo_id", flat=True)
    assert len(reminded) == len(set(reminded)) == 250
    [line] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert line.failed_ids == [bad.pk]
    assert Todo.objects.get(pk=bad.pk).reminded_at is None


@pytest.mark.django_db
class TestEmailDelivery:
    def test_sends_once_and_records_it(self, user, mailoutbox):
        notification = Notification.objects.create(
            user=user, kind="reminder", title="Reminder: x", email_status=Status.PENDING
        )
        assert deliver_email.apply(args=[notification.pk]).get() == "sent"
        assert deliver_email.apply(args=[notification.pk]).get() == "already handled"
        assert [m.to for m in mailoutbox] == [[user.email]]
        notification.refresh_from_db()
        assert notification.email_status == Status.SENT and notification.email_attempts == 1

    def test_failures_retry_then_show_as_failed(self, user_client, user, settings):
        # A real SMTP client against a closed port: connection refused on every attempt.
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
        notification = Notification.objects.create(
            user=user, kind="reminder", title="Reminder: rent", email_status=Status.PENDING
        )
        result = deliver_email.apply(args=[notification.pk])
        assert result.get() == "failed"
        notification.refresh_from_db()
        assert notification.email_status == Status.FAILED
        assert notification.email_attempts == settings.NOTIFICATION_EMAIL_MAX_RETRIES + 1
        assert notification.email_error == "ConnectionRefusedError"
        assert "Email failed" in user_client.get(reverse("notifications:list")).content.decode()

    def test_a_batch_sends_each_email_once_over_one_connection(
        self, make_user, settings, smtp_server
    ):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = (
            "127.0.0.1",
            int(smtp_server.url.rsplit(":", 1)[1]),
        )
        users = [make_user(f"u{i}") for i in range(5)]
        ids = [
            Notification.objects.create(
                user=u, kind="reminder", title="t", email_status=Status.PENDING
            ).pk
            for u in users
        ]
        busy = Notification.objects.filter(pk=ids[1])
        busy.update(
            email_status=Status.SENDING, email_lease_until=timezone.now() + timedelta(minutes=1)
        )
        opened = []
        real_open = services.get_connection

        def counting_get_connection(*args, **kwargs):
            opened.append(1)
            return real_open(*args, **kwargs)

        with (
            mock.patch.object(services, "get_connection", counting_get_connection),
            mock.patch.object(deliver_email, "apply_async") as handed_on,
        ):
            first = deliver_emails.apply(args=[ids]).get()
            again = deliver_emails.apply(args=[ids]).get()  # a redelivered batch
        assert first == {"sent": 4, "already handled": 0, "handed on": 1}
        assert again == {"sent": 0, "already handled": 4, "handed on": 1}
        assert handed_on.call_args_list[0].args == ((ids[1],),)
        assert len(smtp_server.messages) == 4 and len(opened) == 1
        assert Notification.objects.filter(email_status=Status.SENT).count() == 4

    def test_a_failing_email_hands_the_rest_of_its_batch_on(self, make_user, mailoutbox):
        ids = [
            Notification.objects.create(
                user=make_user(f"u{i}"), kind="reminder", title="t", email_status=Status.PENDING
            ).pk
            for i in range(4)
        ]
        real_send = services.send_claimed_email

        def send(email):
            if email.pk == ids[1]:
                raise ConnectionResetError("server went away")
            real_send(email)

        with (
            mock.patch.object(services, "send_claimed_email", send),
            mock.patch.object(deliver_email, "apply_async") as handed_on,
        ):
            outcome = deliver_emails.apply(args=[ids]).get()
        assert outcome == {"sent": 1, "already handled": 0, "handed on": 3}
        assert [c.args[0][0] for c in handed_on.call_args_list] == ids[1:]
        states = dict(Notification.objects.filter(pk__in=ids).values_list("pk", "email_status"))
        assert [states[pk] for pk in ids] == [Status.SENT] + [Status.PENDING] * 3
        assert Notification.objects.get(pk=ids[1]).email_error == "ConnectionResetError"
        assert len(mailoutbox) == 1

    def test_emails_are_queued_in_batches(self):
        with (
            mock.patch.object(deliver_emails, "delay") as batches,
            mock.patch.object(deliver_email, "delay") as single,
        ):
            services.enqueue_emails(list(range(1, services.EMAIL_BATCH_SIZE * 2 + 2)))
        assert [len(c.args[0]) for c in batches.call_args_list] == [services.EMAIL_BATCH_SIZE] * 2
        single.assert_called_once_with(services.EMAIL_BATCH_SIZE * 2 + 1)

    def test_a_live_lease_is_left_alone(self, user, mailoutbox):
        notification = Notification.objects.create(
            user=user,
            kind="reminder",
            title="t",
            email_status=Status.SENDING,
            email_lease_until=timezone.now() + timedelta(minutes=1),
        )
        assert services.claim_email(notification.pk) == "busy"
        Notification.objects.filter(pk=notification.pk).update(
            email_lease_until=timezone.now() - timedelta(seconds=1)
        )
        assert services.claim_email(notification.pk) == "claimed"

    def test_scan_requeues_emails_that_were_never_sent(self, user):
        stale = Notification.objects.create(
            user=user, kind="reminder", title="t", email_status=Status.PENDING
        )
        Notification.objects.filter(pk=stale.pk).update(
            created_at=timezone.now() - timedelta(hours=1)
        )
        Notification.objects.create(
            user=user, kind="reminder", title="fresh", email_status=Status.PENDING
        )
        assert services.requeue_stuck_emails(timezone.now(), limit=100) == [stale.pk]

    def test_welcome_email_on_signup(self, client, mailoutbox, django_capture_on_commit_callbacks):
        # Enqueue goes to the real broker; here the queued task is run in-process instead.
        with django_capture_on_commit_callbacks(execute=False):
            client.post(
                reverse("accounts:signup"),
                {
                    "username": "wendy",
                    "email": "wendy@example.com",
                    "password1": "correct-horse-battery-9",
                    "password2": "correct-horse-battery-9",
                },
            )
        welcome = Notification.objects.get(kind="welcome")
        deliver_email.apply(args=[welcome.pk])
        assert mailoutbox[0].to == ["wendy@example.com"] and "Welcome" in mailoutbox[0].subject


@pytest.mark.django_db
def test_old_read_notifications_are_deleted(user):
    now = timezone.now()
    old_read = Notification.objects.create(user=user, kind="welcome", title="old", read_at=now)
    Notification.objects.filter(pk=old_read.pk).update(read_at=now - timedelta(days=31))
    old_unread = Notification.objects.create(user=user, kind="welcome", title="unread")
    Notification.objects.filter(pk=old_unread.pk).update(created_at=now - timedelta(days=90))
    recent = Notification.objects.create(
        user=user, kind="welcome", title="recent", read_at=now - timedelta(days=2)
    )
    assert delete_old_notifications.apply().get() == 1
    assert set(Notification.objects.values_list("pk", flat=True)) == {old_unread.pk, recent.pk}


def test_beat_schedule_names_registered_tasks():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks, entry["task"]


@pytest.mark.django_db
class TestBadRowsAreIsolated:
    """Issue 17: one todo's bad data once failed every scan, so nobody was reminded."""

    @pytest.fixture
    def unchecked_due_at(self):
        """The check of due times dropped, inside this test's transaction (so, first)."""
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE todos_todo DROP CONSTRAINT todo_due_at_in_range")

    def plant(self, user, due_at: str) -> int:
        """A due todo written by SQL, past the forms and the model."""
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO todos_todo (user_id, title, notes, priority, status, created_at, "
                "updated_at, due_at, remind_at) VALUES (%s, 'planted', '', 2, 'open', now(), "
                "now(), %s, now() - interval '1 minute') RETURNING id",
                [user.pk, due_at],
            )
            return cursor.fetchone()[0]

    @pytest.mark.parametrize("batch_size", [1000, 3])
    def test_the_scan_reminds_every_good_todo_and_reports_the_bad_ones(
        self, unchecked_due_at, make_user, settings, caplog, batch_size
    ):
        settings.REMINDER_BATCH_SIZE = batch_size
        good = due_todos(make_user("good", email_reminders=True), 5)
        # A time after 9999 (Python cannot load it), a BC date, and a time zone the
        # database accepts but Python does not know.
        owner = make_user("owner")
        unreadable = [
            self.plant(owner, "10000-01-01 11:59+00"),
            self.plant(owner, "0001-12-31 10:00+00 BC"),
        ]
        nowhere = make_user("nowhere")
        type(nowhere).objects.filter(pk=nowhere.pk).update(time_zone="Nowhere/Atlantis")
        [unrenderable] = due_todos(nowhere, 1)
        bad = sorted([*unreadable, unrenderable.pk])
        good += due_todos(make_user("late"), 4)

        with mock.patch.object(scan_reminders, "send_event") as send_event:
            result = scan_reminders.apply().get()

        assert result["reminded"] == len(good) and result["failed"] == len(bad)
        reminded = Notification.objects.filter(kind="reminder").values_list("todo_id", flat=True)
        assert sorted(reminded) == sorted(todo.pk for todo in good)
        assert Notification.objects.filter(email_status=Status.PENDING).count() == 5
        # Reported: one log line naming the ids, one event for the metric.
        [line] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert line.failed_ids == bad and ", ".join(map(str, bad)) in line.getMessage()
        send_event.assert_called_once_with(
            "task-rows-failed", name=scan_reminders.name, count=len(bad), retry=False
        )
        # Still due: once repaired, the next scan reminds them.
        assert Todo.objects.filter(pk__in=bad, reminded_at__isnull=True).count() == len(bad)
        type(nowhere).objects.filter(pk=nowhere.pk).update(time_zone="Europe/Paris")
        Todo.objects.filter(pk__in=unreadable).update(due_at=None)
        assert scan_reminders.apply().get()["reminded"] == len(bad)

    def test_a_re_armed_reminder_for_a_time_already_reminded_is_not_made_twice(self, user):
        [todo] = due_todos(user, 1)
        scan_reminders.apply()
        Todo.objects.filter(pk=todo.pk).update(reminded_at=None)  # moved away and back
        others = due_todos(user, 2)
        result = scan_reminders.apply().get()
        assert result["failed"] == 0
        assert Notification.objects.filter(todo=todo).count() == 1
        assert Notification.objects.filter(todo__in=others).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_row_referenced_by_another_transaction_is_not_skipped(make_user):
    """Issue 17, finding 6: reminders a periodic job held locked were skipped (SKIP LOCKED)
    and arrived a minute late. No job locks todos now (overdue is derived), and the claim's
    FOR NO KEY UPDATE does not conflict with the KEY SHARE lock that any transaction
    inserting a row that references the todo holds (a notification, say) while it runs."""
    import threading

    from django.db import connections

    [todo] = due_todos(make_user("held"), 1)
    locked, release = threading.Event(), threading.Event()

    def hold_key_share():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT 1 FROM todos_todo WHERE id = %s FOR KEY SHARE", [todo.pk])
                locked.set()
                release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold_key_share)
    holder.start()
    try:
        assert locked.wait(30)
        assert scan_reminders.apply().get()["reminded"] == 1
    finally:
        release.set()
        holder.join()
    assert Notification.objects.filter(todo=todo).count() == 1
    assert "mark_overdue" not in str(settings.CELERY_BEAT_SCHEDULE)
