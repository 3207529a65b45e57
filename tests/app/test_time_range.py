"""Due and reminder times stay within what PostgreSQL, Python and every zone can hold.

Issue 17, finding 1: a time that is valid in one zone overflowed in another (year 10000
in UTC, a BC date, a reminder offset before year 1), and every page that showed the todo,
and the reminder scan, failed from then on.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from notifications.tasks import scan_reminders
from todos.models import EARLIEST_TIME, LATEST_TIME, TIME_RANGE_MESSAGE, Todo

pytestmark = pytest.mark.django_db

CREATE = reverse("todos:create")
PAGES = ("todos:list", "todos:export", "notifications:list")
LAST_MINUTE = LATEST_TIME - timedelta(minutes=1)


def pages_answer(client, todo: Todo | None = None) -> dict[str, int]:
    urls = [reverse(name) for name in PAGES]
    if todo is not None:
        urls += [reverse("todos:edit", args=[todo.pk]), reverse("todos:delete", args=[todo.pk])]
    statuses = {}
    for url in urls:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        statuses[url] = response.status_code
    return statuses


@pytest.mark.parametrize(
    ("zone", "data", "field", "message"),
    [
        # The four reproductions.
        (
            "Etc/GMT+12",
            {"due_at": "9999-12-31T23:59", "reminder": "custom", "remind_at": "9999-12-31T23:59"},
            "due_at",
            TIME_RANGE_MESSAGE,
        ),
        ("Etc/GMT-14", {"due_at": "0001-01-01T00:00"}, "due_at", TIME_RANGE_MESSAGE),
        ("UTC", {"due_at": "0001-01-01T00:00", "reminder": "1d"}, "due_at", TIME_RANGE_MESSAGE),
        (
            "Etc/GMT+12",
            {"due_at": "2026-01-01T00:00", "reminder": "custom", "remind_at": "9999-12-31T23:59"},
            "remind_at",
            TIME_RANGE_MESSAGE,
        ),
        # Valid due time, but the offset takes the reminder out of range.
        ("UTC", {"due_at": "1900-01-01T00:30", "reminder": "1h"}, "reminder", "before 1900"),
    ],
)
def test_times_out_of_range_get_a_field_error(client, make_user, zone, data, field, message):
    user = make_user(time_zone=zone)
    client.force_login(user)
    response = client.post(CREATE, {"title": "Far away", "priority": 2, **data})
    assert response.status_code == 400
    assert message in str(response.context["form"].errors[field])
    assert not Todo.objects.exists()
    assert set(pages_answer(client).values()) == {200}


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14", "Pacific/Kiritimati", "UTC"])
def test_the_ends_of_the_range_show_in_every_zone(client, make_user, zone):
    """A todo stored at either end, by a user in UTC, still shows after a zone change."""
    user = make_user()
    latest = Todo.objects.create(user=user, title="Last", due_at=LAST_MINUTE, remind_at=LAST_MINUTE)
    Todo.objects.create(user=user, title="First", due_at=EARLIEST_TIME)
    user.time_zone = zone
    user.save()
    client.force_login(user)
    assert set(pages_answer(client, latest).values()) == {200}


def test_the_last_local_minute_of_9998_is_accepted_in_the_westmost_zone(client, make_user):
    client.force_login(make_user(time_zone="Etc/GMT+12"))
    response = client.post(CREATE, {"title": "x", "priority": 2, "due_at": "9998-12-31T11:59"})
    assert response.status_code == 302
    assert Todo.objects.get().due_at == LAST_MINUTE


def test_the_model_refuses_times_out_of_range(user):
    todo = Todo(user=user, title="x", due_at=datetime(1899, 12, 31, tzinfo=UTC))
    todo.remind_before = timedelta(days=-1)
    with pytest.raises(ValidationError) as raised:
        todo.full_clean()
    assert set(raised.value.message_dict) == {"due_at", "remind_before"}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("due_at", "10000-01-01 11:59+00"),
        ("due_at", "0001-12-31 10:00+00 BC"),
        ("remind_at", "9999-06-01 00:00+00"),
        ("remind_before", "-1 day"),
        ("remind_before", "400 days"),
    ],
)
def test_the_database_refuses_what_bypasses_the_model(user, column, value):
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO todos_todo (user_id, title, notes, {column}, priority, status, "  # noqa: S608
            "created_at, updated_at) VALUES (%s, 'x', '', %s, 2, 'open', now(), now())",
            [user.pk, value],
        )


def plant(user, **columns: str) -> int:
    """A row written by SQL, past the model and (dropped in this test) the constraints."""
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO todos_todo (user_id, title, notes, priority, status, created_at, "  # noqa: S608
            f"updated_at, {names}) VALUES (%s, 'planted', '', 2, 'open', now(), now(), {marks}) "
            "RETURNING id",
            [user.pk, *columns.values()],
        )
        return cursor.fetchone()[0]


def test_the_migration_repairs_rows_already_out_of_range(client, user, other_user):
    with connection.cursor() as cursor:
        for name in ("due_at", "remind_at", "remind_before"):
            cursor.execute(f"ALTER TABLE todos_todo DROP CONSTRAINT todo_{name}_in_range")
    too_late = plant(user, due_at="10000-01-01 11:59+00", remind_at="10000-01-01 11:59+00")
    too_early = plant(user, due_at="0001-12-31 10:00+00 BC", remind_before="1 day")
    bad_offset = plant(user, due_at="2030-01-01 00:00+00", remind_before="-2 days")
    fine = Todo.objects.create(
        user=other_user, title="fine", due_at=datetime(2030, 1, 1, tzinfo=UTC)
    )
    migration = importlib.import_module("todos.migrations.0003_todo_times_in_range")
    editor = SimpleNamespace(connection=connection)

    migration.repair_times_out_of_range(apps, editor)

    rows = Todo.objects.in_bulk([too_late, too_early, bad_offset, fine.pk])
    assert (rows[too_late].due_at, rows[too_late].remind_at) == (LAST_MINUTE, LAST_MINUTE)
    assert (rows[too_early].due_at, rows[too_early].remind_at) == (EARLIEST_TIME, EARLIEST_TIME)
    assert rows[too_early].remind_before == timedelta(days=1)
    assert rows[bad_offset].remind_before is None
    assert rows[fine.pk].due_at == fine.due_at
    client.force_login(user)
    assert set(pages_answer(client, rows[too_late]).values()) == {200}
    # The reminder of the BC todo, moved to 1900, is due now and is sent.
    assert scan_reminders()["reminded"] == 1
